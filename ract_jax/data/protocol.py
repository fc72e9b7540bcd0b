"""The Liang et al. (2018) strong-generalisation protocol, as RaCT's `setup_data.py` runs it.

Pure numpy / pandas (no JAX). The output is row-for-row what the authors' code writes to `pro_sg/`
(reference notes, section 1 and Pitfalls 1-3), computed on integer codes so that it scales to MSD
(48M triplets) and ML-20M on a small machine:

  1. keep rows with `rating > rating_threshold` (None: keep all); then keep the first row of each
     (user, item) pair (Liang's data has none; duplicates would put an item in both halves of a
     held-out user's 80/20 split);
  2. one filtering pass: items with >= min_item_count rows (if > 0), then users with >= min_user_count
     rows counted on the item-filtered data (the `groupby(id).size()` counts; Pitfall 1);
  3. `unique_uid` = distinct user ids, ascending (numeric or string order); `np.random.seed(seed)`,
     `permutation(n_users)`; train = first n - 2H, validation = next H, test = last H (at least H
     training users are required);
  4. `unique_sid = pd.unique(train_plays.item)` (first appearance in raw order); sid = position;
     uid = position in the permuted user list (`unique_uid`);
  5. validation / test plays restricted to unique_sid, then the 80/20 split: re-seed, users in
     ascending raw id, `np.random.choice(n, int(0.2 n), replace=False)` held out for n >= 5.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ract_jax.data.errors import DataError


@dataclasses.dataclass(frozen=True)
class ProtocolParams:
  """The `config.data` keys that shape the split (see configs/base.py for their meaning)."""

  heldout_users: int = 10_000
  rating_threshold: float | None = None
  min_item_count: int = 0
  min_user_count: int = 5
  split_seed: int = 98765
  heldout_fraction: float = 0.2
  min_items_to_split: int = 5

  @classmethod
  def from_config(cls, data_config) -> "ProtocolParams":
    thr = data_config.rating_threshold
    return cls(heldout_users=int(data_config.heldout_users),
               rating_threshold=None if thr is None else float(thr),
               min_item_count=int(data_config.min_item_count),
               min_user_count=int(data_config.min_user_count),
               split_seed=int(data_config.split_seed),
               heldout_fraction=float(data_config.heldout_fraction),
               min_items_to_split=int(data_config.min_items_to_split))

  def validate(self) -> None:
    """Raises DataError for parameters that cannot work whatever the data."""
    if not 0.0 < self.heldout_fraction < 1.0:
      raise DataError(f"config.data.heldout_fraction must be in (0, 1), got {self.heldout_fraction} "
                      f"(--config.data.heldout_fraction).")
    if self.heldout_users < 1:
      raise DataError(f"config.data.heldout_users must be >= 1 (validation and test users each), got "
                      f"{self.heldout_users} (--config.data.heldout_users).")
    if self.min_item_count < 0 or self.min_user_count < 0 or self.min_items_to_split < 0:
      raise DataError("config.data.min_item_count / min_user_count / min_items_to_split must be >= 0.")

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Pairs:
  """The rows of one Liang CSV (`uid,sid`), in file order; both int64 `[n_rows]`."""

  uid: np.ndarray
  sid: np.ndarray

  def __len__(self) -> int:
    return int(self.uid.shape[0])


@dataclasses.dataclass(frozen=True)
class LiangSplit:
  """The protocol's output: the content of the authors' `pro_sg/` directory, in memory.

  Attributes:
    train, validation_tr, validation_te, test_tr, test_te: the five CSVs' rows.
    unique_sid: object `[n_items]` raw item ids as strings (the lines of `unique_sid.txt`).
    unique_uid: object `[n_users]` raw user ids as strings, position = uid (train users, then
      validation, then test, in the permutation's order; the lines of `unique_uid.txt`).
    n_users: users after filtering (train + validation + test).
    n_train_users: users 0 .. n_train_users-1 are the training users.
    stats: row and id counts after each step (for meta.json and logs).
  """

  train: Pairs
  validation_tr: Pairs
  validation_te: Pairs
  test_tr: Pairs
  test_te: Pairs
  unique_sid: np.ndarray
  unique_uid: np.ndarray
  n_users: int
  n_train_users: int
  stats: dict

  @property
  def n_items(self) -> int:
    return int(self.unique_sid.shape[0])


def _encode(col: pd.Series, keep: np.ndarray | None, sort: bool) -> tuple[np.ndarray, np.ndarray]:
  """Integer codes for an id column (restricted to `keep`), and the raw id of each code.

  With `sort`, code order = id order: numeric for integer ids, string (code point) order for string
  ids, i.e. the order of pandas' `groupby(id)` keys in the authors' code.
  """
  if isinstance(col.dtype, pd.CategoricalDtype):
    cats = col.cat.categories
    codes = col.cat.codes.to_numpy()
    if keep is not None:
      codes = codes[keep]
    if sort and not cats.is_monotonic_increasing:
      order = np.argsort(np.asarray(cats, dtype=object), kind="stable")
      rank = np.empty(len(order), np.int64)
      rank[order] = np.arange(len(order))
      codes = rank[codes]
      cats = cats[order]
    uniques = np.asarray(cats, dtype=object)
  else:
    values = col.to_numpy()
    if keep is not None:
      values = values[keep]
    codes, uniques = pd.factorize(values, sort=sort)
    uniques = np.asarray(uniques)
  dtype = np.int32 if len(uniques) < 2**31 - 1 else np.int64
  return codes.astype(dtype, copy=False), uniques


def _split_heldout(u: np.ndarray, i: np.ndarray, uid_of: np.ndarray, sid_of: np.ndarray,
                   params: ProtocolParams) -> tuple[Pairs, Pairs]:
  """The authors' `split_train_test_proportion` on codes.

  Args:
    u: user codes (code order = raw id order) of the held-out users' plays, in raw order.
    i: item codes, aligned with u.
    uid_of, sid_of: code -> Liang uid / sid.
    params: the protocol parameters.

  Returns:
    (fold-in pairs, held-out pairs): users in ascending raw id, each user's rows in raw order.
  """
  order = np.argsort(u, kind="stable")  # Groups by user; keeps raw order within a user.
  us, its = u[order], i[order]
  n = len(us)
  te = np.zeros(n, dtype=bool)
  if n:
    starts = np.flatnonzero(np.concatenate([[True], us[1:] != us[:-1]]))
    counts = np.diff(np.concatenate([starts, [n]]))
    # The legacy global RandomState, re-seeded for each call (validation, then test) as in the
    # authors' code; `choice(replace=False)` is `permutation(n)[:size]` on that stream.
    rng = np.random.RandomState(params.split_seed)
    frac = params.heldout_fraction
    for s, c in zip(starts.tolist(), counts.tolist()):
      if c >= params.min_items_to_split:
        te[s + rng.choice(c, size=int(frac * c), replace=False)] = True
  tr = ~te
  return (Pairs(uid_of[us[tr]].astype(np.int64), sid_of[its[tr]].astype(np.int64)),
          Pairs(uid_of[us[te]].astype(np.int64), sid_of[its[te]].astype(np.int64)))


def _first_occurrences(u: np.ndarray, i: np.ndarray, n_icodes: int) -> np.ndarray | None:
  """Mask of the first row of each (user, item) pair, or None when every pair is distinct.

  One sort of the pair keys decides (the common case: no duplicates); only then a stable argsort
  finds, within each run of equal keys, the row that comes first in raw order.
  """
  key = u.astype(np.int64) * n_icodes + i  # One int64 per pair: n_users * n_items < 2**63.
  sorted_key = np.sort(key)
  if not (sorted_key[1:] == sorted_key[:-1]).any():
    return None
  del sorted_key
  order = np.argsort(key, kind="stable")
  key = key[order]
  first = np.ones(len(key), dtype=bool)
  first[1:] = key[1:] != key[:-1]
  keep = np.empty(len(key), dtype=bool)
  keep[order] = first
  return keep


def _as_strings(ids: np.ndarray) -> np.ndarray:
  """Raw ids as an object array of str (integers in decimal, as pandas writes them)."""
  if ids.dtype.kind in "iu":
    return np.asarray([str(x) for x in ids.tolist()], dtype=object)
  return np.asarray(ids, dtype=object).astype(str).astype(object)


def run_protocol(df: pd.DataFrame, params: ProtocolParams, log=None) -> LiangSplit:
  """Applies the Liang et al. protocol to a reader DataFrame.

  Args:
    df: `[n_rows]` with columns user, item, rating (`textio.frame`), in raw file order.
    params: threshold, filters, H, seed, fraction.
    log: optional callable(str) for progress lines.

  Returns:
    The LiangSplit, row-for-row equal to what RaCT's `setup_data.py` writes.

  Raises:
    DataError: invalid parameters, no data left after filtering, or fewer than H training users.
  """
  params.validate()
  say = log or (lambda _: None)
  stats = {"rows_raw": int(len(df))}
  keep = None
  if params.rating_threshold is not None:
    rating = df["rating"].to_numpy()
    if len(rating) and np.isnan(rating).all():
      raise DataError(
          f"config.data.rating_threshold={params.rating_threshold} is set, but this data has no "
          f"rating values (format without ratings, or rating_col=-1). Use "
          f"--config.data.rating_threshold=None, or name the rating column "
          f"(--config.data.rating_col=...).")
    keep = rating > params.rating_threshold  # Strictly greater (Liang: rating > 3.5).
    stats["rows_after_threshold"] = int(keep.sum())
  else:
    stats["rows_after_threshold"] = stats["rows_raw"]

  u, user_ids = _encode(df["user"], keep, sort=True)
  i, item_ids = _encode(df["item"], keep, sort=False)
  del keep
  n_ucodes, n_icodes = len(user_ids), len(item_ids)

  # A repeated (user, item) row is one interaction: keep its first row, before the filters count
  # rows per user and item (docs/data.md, "Duplicate rows").
  first = _first_occurrences(u, i, n_icodes) if len(u) else None
  stats["duplicates_dropped"] = 0 if first is None else int(len(u) - np.count_nonzero(first))
  if first is not None:
    u, i = u[first], i[first]
    say(f"protocol: dropped {stats['duplicates_dropped']:,} duplicate (user, item) rows (kept the "
        f"first row of each pair)")
  del first

  # One filtering pass (reference notes section 1, Pitfall 2). Counting rows per code with bincount
  # is `groupby(id).size()`; the `as_index=False` form of the authors' code is broken on modern
  # pandas (Pitfall 1).
  if params.min_item_count > 0:
    icount = np.bincount(i, minlength=n_icodes)
    m = icount[i] >= params.min_item_count
    u, i = u[m], i[m]
    del m, icount
  stats["rows_after_item_filter"] = int(len(u))
  if params.min_user_count > 0:
    ucount = np.bincount(u, minlength=n_ucodes)
    m = ucount[u] >= params.min_user_count
    u, i = u[m], i[m]
    del m, ucount
  stats["rows_after_user_filter"] = n_rows = int(len(u))
  if n_rows == 0:
    raise DataError(
        "No interactions left after filtering: "
        f"{stats['rows_raw']} raw rows, {stats['rows_after_threshold']} after the rating threshold "
        f"({params.rating_threshold}), {stats['duplicates_dropped']} duplicate (user, item) rows "
        f"dropped, {stats['rows_after_item_filter']} after keeping items with "
        f">= {params.min_item_count} rows, 0 after keeping users with >= {params.min_user_count} "
        f"rows. Lower --config.data.rating_threshold, --config.data.min_item_count or "
        f"--config.data.min_user_count, or check --config.data.raw_path / format.")

  present_u = np.bincount(u, minlength=n_ucodes) > 0
  unique_uid = np.flatnonzero(present_u)  # Ascending codes = ascending raw ids.
  n_users = len(unique_uid)
  stats["items_after_filter"] = int(np.count_nonzero(np.bincount(i, minlength=n_icodes)))
  stats["users_after_filter"] = n_users
  h = params.heldout_users
  n_tr = n_users - 2 * h
  if n_tr < h:
    # Fewer training users than users in each held-out split: the model and the item list
    # (training users' items only) would rest on a handful of users.
    most = (f"at most {n_users // 3} (so that n_users - 2H >= H)" if n_users >= 3 else
            "any value: no split works with so few users")
    raise DataError(
        f"config.data.heldout_users={h} leaves {max(n_tr, 0)} training users: {n_users} users "
        f"after filtering minus {h} validation and {h} test users. A split needs at least as many "
        f"training users as held-out users per split. Set --config.data.heldout_users to {most}, "
        f"or relax the filters.")

  # np.random.seed(seed); permutation(n) on the legacy global stream == RandomState(seed).
  perm = np.random.RandomState(params.split_seed).permutation(n_users)
  unique_uid = unique_uid[perm]
  role = np.full(n_ucodes, -1, dtype=np.int8)
  role[unique_uid[:n_tr]] = 0
  role[unique_uid[n_tr:n_tr + h]] = 1
  role[unique_uid[n_tr + h:]] = 2
  uid_of = np.full(n_ucodes, -1, dtype=np.int64)
  uid_of[unique_uid] = np.arange(n_users, dtype=np.int64)
  raw_uid = _as_strings(user_ids[unique_uid])
  del unique_uid, perm

  r = role[u]
  is_tr = r == 0
  train_i = i[is_tr]
  sid_codes = pd.unique(train_i)  # First appearance in raw order among training users' rows.
  sid_of = np.full(n_icodes, -1, dtype=np.int64)
  sid_of[sid_codes] = np.arange(len(sid_codes), dtype=np.int64)
  train = Pairs(uid_of[u[is_tr]], sid_of[train_i])
  del train_i, is_tr
  say(f"protocol: {n_users} users ({n_tr} train, {h} validation, {h} test), "
      f"{len(sid_codes)} items, {len(train)} training interactions")

  known = sid_of[i] >= 0  # Held-out plays restricted to training items *before* the split.
  splits = {}
  for name, k in (("validation", 1), ("test", 2)):
    m = (r == k) & known
    splits[name] = _split_heldout(u[m], i[m], uid_of, sid_of, params)
  del r, known, u, i

  stats.update(n_train_users=n_tr, n_heldout_users=h, n_items=int(len(sid_codes)))
  return LiangSplit(train=train, validation_tr=splits["validation"][0],
                    validation_te=splits["validation"][1], test_tr=splits["test"][0],
                    test_te=splits["test"][1], unique_sid=_as_strings(item_ids[sid_codes]),
                    unique_uid=raw_uid, n_users=n_users,
                    n_train_users=n_tr, stats=stats)
