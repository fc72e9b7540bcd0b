"""The Liang et al. protocol against a literal port of the authors' pandas code.

`liang_reference` below is a straightforward, loop-based port of RaCT's `setup_data.py`
(`process_unzipped_data`, itself Liang's notebook), with the one fix modern pandas needs:
`groupby(id).size()` instead of the `as_index=False` form (reference notes, Pitfall 1). Our
vectorised implementation must write the same five CSVs and unique_sid.txt, byte for byte, and
record the same uid -> raw user id map (the port returns its permuted `unique_uid`).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from ract_jax.data import protocol, store
from ract_jax.data.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared", "data")


# ------------------------------------------------------------------------------------------------
# The authors' code, ported literally (column names userId / movieId as in their ratings.csv).
# ------------------------------------------------------------------------------------------------


def liang_reference(raw_data: pd.DataFrame, out_dir: str, *, n_heldout_users: int,
                    discard_ratings_below=3.5, min_sc=0, min_uc=5) -> list:
  """Writes pro_sg-style files for raw_data (columns userId, movieId, rating) into out_dir.

  Returns the permuted `unique_uid` (raw user id of each uid), which the authors keep in memory.
  """
  if discard_ratings_below is not None:
    raw_data = raw_data[raw_data["rating"] > discard_ratings_below]

  def get_count(tp, id):
    return tp[[id]].groupby(id).size()  # The fix: a Series indexed by id.

  def filter_triplets(tp, min_uc=5, min_sc=0):
    if min_sc > 0:
      itemcount = get_count(tp, "movieId")
      tp = tp[tp["movieId"].isin(itemcount.index[itemcount >= min_sc])]
    if min_uc > 0:
      usercount = get_count(tp, "userId")
      tp = tp[tp["userId"].isin(usercount.index[usercount >= min_uc])]
    usercount, itemcount = get_count(tp, "userId"), get_count(tp, "movieId")
    return tp, usercount, itemcount

  raw_data, user_activity, item_popularity = filter_triplets(raw_data, min_uc=min_uc,
                                                             min_sc=min_sc)
  unique_uid = user_activity.index
  np.random.seed(98765)
  idx_perm = np.random.permutation(unique_uid.size)
  unique_uid = unique_uid[idx_perm]
  n_users = unique_uid.size
  tr_users = unique_uid[:(n_users - n_heldout_users * 2)]
  vd_users = unique_uid[(n_users - n_heldout_users * 2):(n_users - n_heldout_users)]
  te_users = unique_uid[(n_users - n_heldout_users):]
  train_plays = raw_data.loc[raw_data["userId"].isin(tr_users)]
  unique_sid = pd.unique(train_plays["movieId"])
  show2id = dict((sid, i) for (i, sid) in enumerate(unique_sid))
  profile2id = dict((pid, i) for (i, pid) in enumerate(unique_uid))
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "unique_sid.txt"), "w") as f:
    for sid in unique_sid:
      f.write("%s\n" % sid)

  def split_train_test_proportion(data, test_prop=0.2):
    data_grouped_by_user = data.groupby("userId")
    tr_list, te_list = list(), list()
    np.random.seed(98765)
    for _, group in data_grouped_by_user:
      n_items_u = len(group)
      if n_items_u >= 5:
        idx = np.zeros(n_items_u, dtype="bool")
        idx[np.random.choice(n_items_u, size=int(test_prop * n_items_u),
                             replace=False).astype("int64")] = True
        tr_list.append(group[np.logical_not(idx)])
        te_list.append(group[idx])
      else:
        tr_list.append(group)
    empty = data.iloc[:0]
    data_tr = pd.concat(tr_list) if tr_list else empty  # (pd.concat([]) raises.)
    data_te = pd.concat(te_list) if te_list else empty
    return data_tr, data_te

  vad_plays = raw_data.loc[raw_data["userId"].isin(vd_users)]
  vad_plays = vad_plays.loc[vad_plays["movieId"].isin(unique_sid)]
  vad_plays_tr, vad_plays_te = split_train_test_proportion(vad_plays)
  test_plays = raw_data.loc[raw_data["userId"].isin(te_users)]
  test_plays = test_plays.loc[test_plays["movieId"].isin(unique_sid)]
  test_plays_tr, test_plays_te = split_train_test_proportion(test_plays)

  def numerize(tp):
    uid = map(lambda x: profile2id[x], tp["userId"])
    sid = map(lambda x: show2id[x], tp["movieId"])
    return pd.DataFrame(data={"uid": list(uid), "sid": list(sid)}, columns=["uid", "sid"])

  numerize(train_plays).to_csv(os.path.join(out_dir, "train.csv"), index=False)
  numerize(vad_plays_tr).to_csv(os.path.join(out_dir, "validation_tr.csv"), index=False)
  numerize(vad_plays_te).to_csv(os.path.join(out_dir, "validation_te.csv"), index=False)
  numerize(test_plays_tr).to_csv(os.path.join(out_dir, "test_tr.csv"), index=False)
  numerize(test_plays_te).to_csv(os.path.join(out_dir, "test_te.csv"), index=False)
  return list(unique_uid)


# ------------------------------------------------------------------------------------------------
# Helpers.
# ------------------------------------------------------------------------------------------------


def _ours(df: pd.DataFrame, out_dir: str, **kw) -> protocol.LiangSplit:
  params = protocol.ProtocolParams(**kw)
  split = protocol.run_protocol(df, params)
  store.write_processed(split, out_dir, {"test": True})
  return split


def _assert_same_files(a: str, b: str) -> None:
  for name in ("unique_sid.txt",) + store.LIANG_FILES:
    with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
      da, db = fa.read(), fb.read()
    if da != db:
      la, lb = da.split(b"\n"), db.split(b"\n")
      first = next((k for k, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
      pytest.fail(f"{name} differs at line {first + 1}: ours {la[first:first + 3]} vs reference "
                  f"{lb[first:first + 3]} ({len(la)} vs {len(lb)} lines)")


def _shared(rel: str) -> str:
  path = os.path.join(SHARED, rel)
  if not os.path.exists(path):
    pytest.skip(f"{os.path.normpath(path)} is absent (the real MovieLens samples live in "
                f"../shared/data beside the repository)")
  return path


# ------------------------------------------------------------------------------------------------
# Row-for-row equality with the authors' code.
# ------------------------------------------------------------------------------------------------


def test_matches_reference_on_ml_latest_small(tmp_path):
  path = _shared("ml-latest-small/ratings.csv")
  raw = pd.read_csv(path, header=0)  # As the authors read ratings.csv.
  ref_uid = liang_reference(raw, str(tmp_path / "ref"), n_heldout_users=50)
  ours = pd.DataFrame({"user": raw["userId"], "item": raw["movieId"], "rating": raw["rating"]})
  split = _ours(ours, str(tmp_path / "ours"), heldout_users=50, rating_threshold=3.5,
                min_user_count=5)
  _assert_same_files(str(tmp_path / "ours"), str(tmp_path / "ref"))
  assert split.n_users == 603 and len(split.train) > 0
  assert list(split.unique_uid) == [str(x) for x in ref_uid]
  assert split.stats["duplicates_dropped"] == 0  # Liang's data has none: the split is unchanged.


def test_matches_reference_on_ml1m_implicit(tmp_path):
  path = _shared("ml-1m-implicit/interactions.txt")
  users, items = [], []
  with open(path) as f:  # Independent adjacency parse: `user item item ...`.
    for line in f:
      toks = [int(t) for t in line.split()]
      if toks:
        users += [toks[0]] * (len(toks) - 1)
        items += toks[1:]
  raw = pd.DataFrame({"userId": users, "movieId": items, "rating": np.nan})
  ref_uid = liang_reference(raw, str(tmp_path / "ref"), n_heldout_users=600,
                            discard_ratings_below=None)
  ours = pd.DataFrame({"user": users, "item": items, "rating": np.nan})
  split = _ours(ours, str(tmp_path / "ours"), heldout_users=600, rating_threshold=None,
                min_user_count=5)
  _assert_same_files(str(tmp_path / "ours"), str(tmp_path / "ref"))
  assert list(split.unique_uid) == [str(x) for x in ref_uid]
  assert split.stats["duplicates_dropped"] == 0


def _random_string_id_data(seed: int, n_users: int, n_items: int, n_rows: int) -> pd.DataFrame:
  rng = np.random.RandomState(seed)
  # Ids whose string order differs from their numeric order ('10' < '9'), plus letters.
  uid_pool = np.array([str(x) for x in rng.choice(5000, n_users, replace=False)] +
                      ["u" + str(x) for x in range(3)], dtype=object)
  iid_pool = np.array(["i%d" % x for x in rng.choice(10**6, n_items, replace=False)], dtype=object)
  u = uid_pool[rng.randint(0, len(uid_pool), n_rows)]
  u[: len(uid_pool)] = uid_pool  # Every user appears.
  i = iid_pool[np.minimum(rng.zipf(1.5, n_rows) - 1, len(iid_pool) - 1)]
  df = pd.DataFrame({"u": u, "i": i}).drop_duplicates().sample(frac=1.0, random_state=seed)
  return pd.DataFrame({"userId": df["u"].to_numpy(), "movieId": df["i"].to_numpy(),
                       "rating": rng.randint(1, 11, len(df)) / 2.0})


@pytest.mark.parametrize("seed,threshold,min_sc,min_uc,h", [
    (0, None, 0, 5, 10),
    (1, 3.5, 0, 5, 8),
    (2, 2.0, 3, 3, 12),
    (3, None, 2, 2, 20),  # Small users: some held-out users keep everything as fold-in.
])
def test_matches_reference_on_random_string_ids(tmp_path, seed, threshold, min_sc, min_uc, h):
  raw = _random_string_id_data(seed, 120, 300, 4000)
  ref_uid = liang_reference(raw, str(tmp_path / "ref"), n_heldout_users=h,
                            discard_ratings_below=threshold, min_sc=min_sc, min_uc=min_uc)
  for as_categorical in (False, True):
    user, item = raw["userId"], raw["movieId"]
    if as_categorical:  # The readers' representation: categories (here unsorted on purpose).
      user = pd.Categorical(user, categories=pd.unique(user))
      item = pd.Categorical(item, categories=pd.unique(item))
    ours = pd.DataFrame({"user": user, "item": item, "rating": raw["rating"].to_numpy()})
    out = str(tmp_path / f"ours{int(as_categorical)}")
    split = _ours(ours, out, heldout_users=h, rating_threshold=threshold, min_item_count=min_sc,
                  min_user_count=min_uc)
    _assert_same_files(out, str(tmp_path / "ref"))
    assert list(split.unique_uid) == list(ref_uid)


def test_random_int_ids_with_fold_in_only_users(tmp_path):
  # Many rare items: after restricting held-out users to training items, some have < 5 left.
  rng = np.random.RandomState(7)
  n = 900
  raw = pd.DataFrame({"userId": rng.randint(0, 150, n) * 7, "movieId": rng.randint(0, 400, n),
                      "rating": np.nan}).drop_duplicates(["userId", "movieId"])
  liang_reference(raw, str(tmp_path / "ref"), n_heldout_users=30, discard_ratings_below=None,
                  min_uc=3)
  split = _ours(raw.rename(columns={"userId": "user", "movieId": "item"}), str(tmp_path / "ours"),
                heldout_users=30, min_user_count=3)
  _assert_same_files(str(tmp_path / "ours"), str(tmp_path / "ref"))
  held_users = set(split.validation_tr.uid.tolist())
  assert len(held_users - set(split.validation_te.uid.tolist())) > 0  # Some had < 5 items.


# ------------------------------------------------------------------------------------------------
# Structure and errors.
# ------------------------------------------------------------------------------------------------


def _toy(n_users=40, per_user=8, seed=0):
  rng = np.random.RandomState(seed)
  rows = [(u, int(i)) for u in range(n_users) for i in rng.choice(30, per_user, replace=False)]
  u, i = zip(*rows)
  return pd.DataFrame({"user": np.array(u) + 100, "item": np.array(i) + 1000,
                       "rating": rng.randint(1, 6, len(u)).astype(float)})


def test_split_structure():
  df = _toy()
  s = protocol.run_protocol(df, protocol.ProtocolParams(heldout_users=5))
  assert s.n_users == 40 and s.n_train_users == 30
  assert set(s.train.uid.tolist()) == set(range(30))
  assert set(s.validation_tr.uid.tolist()) <= set(range(30, 35))
  assert set(s.test_tr.uid.tolist()) <= set(range(35, 40))
  for p in (s.train, s.validation_tr, s.validation_te, s.test_tr, s.test_te):
    assert p.sid.min() >= 0 and p.sid.max() < s.n_items
  # Held-out: int(0.2 * 8) = 1 item per user.
  assert np.all(np.bincount(s.validation_te.uid - 30) == 1)
  # sid 0 is the item of the first raw row that belongs to a training user.
  assert s.train.sid[0] == 0
  assert s.unique_sid.dtype == object and all(isinstance(x, str) for x in s.unique_sid)


def test_empty_after_filtering():
  with pytest.raises(DataError, match=r"No interactions left after filtering.*min_user_count"):
    protocol.run_protocol(_toy(per_user=4), protocol.ProtocolParams(heldout_users=1,
                                                                    min_user_count=5))
  with pytest.raises(DataError, match=r"rating threshold"):
    protocol.run_protocol(_toy(), protocol.ProtocolParams(heldout_users=1, rating_threshold=5.0))


def test_too_many_heldout_users():
  # 40 users: H = 13 leaves 14 training users; H = 14 would leave 12 (< H), H = 20 none.
  assert protocol.run_protocol(_toy(n_users=40),
                               protocol.ProtocolParams(heldout_users=13)).n_train_users == 14
  for h, left in ((14, 12), (20, 0)):
    with pytest.raises(DataError) as e:
      protocol.run_protocol(_toy(n_users=40), protocol.ProtocolParams(heldout_users=h))
    msg = str(e.value)
    assert f"heldout_users={h} leaves {left} training users" in msg and "40 users" in msg, msg
    assert "--config.data.heldout_users to at most 13" in msg, msg


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5])
def test_bad_heldout_fraction(frac):
  with pytest.raises(DataError, match="heldout_fraction"):
    protocol.run_protocol(_toy(), protocol.ProtocolParams(heldout_users=5, heldout_fraction=frac))


def test_threshold_without_ratings():
  df = _toy()
  df["rating"] = np.nan
  with pytest.raises(DataError, match="no rating values"):
    protocol.run_protocol(df, protocol.ProtocolParams(heldout_users=5, rating_threshold=3.5))


def test_params_from_config():
  from configs import msd  # pylint: disable=g-import-not-at-top
  p = protocol.ProtocolParams.from_config(msd.get_config().data)
  assert p == protocol.ProtocolParams(heldout_users=50_000, rating_threshold=None,
                                      min_item_count=200, min_user_count=20)


# ------------------------------------------------------------------------------------------------
# Duplicate (user, item) rows and raw user ids.
# ------------------------------------------------------------------------------------------------


def _parts(s: protocol.LiangSplit) -> list:
  return [(p.uid.tolist(), p.sid.tolist()) for p in
          (s.train, s.validation_tr, s.validation_te, s.test_tr, s.test_te)]


@pytest.mark.parametrize("how", ["each_row_twice", "file_twice", "first_rows_again_at_the_end"])
def test_duplicate_rows_keep_the_first(how):
  df = _toy(n_users=60, per_user=12)
  params = protocol.ProtocolParams(heldout_users=8)
  clean = protocol.run_protocol(df, params)
  if how == "each_row_twice":
    dup = df.loc[df.index.repeat(2)]
  elif how == "file_twice":
    dup = pd.concat([df, df])
  else:  # Keeping the last row of a pair would move these items to the end of their users' rows.
    dup = pd.concat([df, df.groupby("user").head(1)])
  lines = []
  split = protocol.run_protocol(dup.reset_index(drop=True), params, log=lines.append)
  assert split.stats["duplicates_dropped"] == len(dup) - len(df) > 0
  assert clean.stats["duplicates_dropped"] == 0
  assert any(f"dropped {len(dup) - len(df):,} duplicate" in l for l in lines), lines
  assert _parts(split) == _parts(clean)  # The first rows are exactly the clean data.
  assert list(split.unique_sid) == list(clean.unique_sid)
  assert list(split.unique_uid) == list(clean.unique_uid)
  for tr, te in ((split.validation_tr, split.validation_te), (split.test_tr, split.test_te)):
    assert not set(zip(tr.uid.tolist(), tr.sid.tolist())) & set(zip(te.uid.tolist(),
                                                                     te.sid.tolist()))


def test_duplicates_after_threshold_and_before_filters():
  df = _toy(n_users=40, per_user=8)
  df["rating"] = 5.0
  # User 100's first item again, first with a low rating (dropped by the threshold), then a high
  # one: a pair counts once if any of its rows passes the threshold.
  first = df.iloc[0]
  extra = pd.DataFrame({"user": [first["user"]] * 2, "item": [first["item"]] * 2,
                        "rating": [1.0, 5.0]})
  split = protocol.run_protocol(pd.concat([extra, df], ignore_index=True),
                                protocol.ProtocolParams(heldout_users=5, rating_threshold=3.5))
  assert split.stats["rows_after_threshold"] == len(df) + 1
  assert split.stats["duplicates_dropped"] == 1
  # Counted before the user filter: a user with 3 distinct items written twice has 3 rows, < 5.
  small = pd.DataFrame({"user": [1] * 6, "item": [7, 8, 9] * 2, "rating": 5.0})
  split = protocol.run_protocol(pd.concat([df, small], ignore_index=True),
                                protocol.ProtocolParams(heldout_users=5))
  assert split.n_users == 40 and "1" not in set(split.unique_uid)


@pytest.mark.parametrize("rel,reader", [("ml-latest-small/ratings.csv", "ml20m"),
                                        ("ml-100k/u.data", "ml100k"),
                                        ("ml-1m-implicit/interactions.txt", "adjacency")])
def test_real_samples_have_no_duplicate_pairs(rel, reader):
  from ract_jax.data import formats  # pylint: disable=g-import-not-at-top
  fmt = formats.get(reader)
  df = fmt.read([_shared(rel)], {"id_type": "int"})
  assert not df.duplicated(["user", "item"]).any()
  split = protocol.run_protocol(df, protocol.ProtocolParams(heldout_users=50))
  assert split.stats["duplicates_dropped"] == 0


def test_unique_uid_maps_uids_to_raw_users():
  df = _toy()
  s = protocol.run_protocol(df, protocol.ProtocolParams(heldout_users=5))
  assert len(s.unique_uid) == s.n_users and len(set(s.unique_uid)) == s.n_users
  assert sorted(s.unique_uid, key=int) == [str(u) for u in sorted(set(df["user"]))]
  raw = set(zip(df["user"].astype(str), df["item"].astype(str)))
  for p in (s.train, s.validation_tr, s.validation_te, s.test_tr, s.test_te):
    assert {(s.unique_uid[u], s.unique_sid[i]) for u, i in zip(p.uid, p.sid)} <= raw
