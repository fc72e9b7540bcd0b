"""The synthetic generator: determinism, shape statistics, learnable structure, raw files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ract_jax.data import processed, protocol
from ract_jax.data.formats import movielens, msd, netflix, synthetic

SMALL = synthetic.SyntheticSpec(n_users=1500, n_items=400, mean_items_per_user=30.0, seed=3)


def test_deterministic_and_seeded():
  a = synthetic.generate(SMALL)
  b = synthetic.generate(SMALL)
  pd.testing.assert_frame_equal(a, b)
  c = synthetic.generate(synthetic.SyntheticSpec(**{**SMALL.__dict__, "seed": 4}))
  assert len(c) != len(a) or not np.array_equal(c["item"].to_numpy(), a["item"].to_numpy())


def test_blocks_do_not_depend_on_n_users():
  a = synthetic.generate(synthetic.SyntheticSpec(n_users=5000, n_items=100, seed=1,
                                                 mean_items_per_user=5.0))
  b = synthetic.generate(synthetic.SyntheticSpec(n_users=4096, n_items=100, seed=1,
                                                 mean_items_per_user=5.0))
  pd.testing.assert_frame_equal(a[a.user < 4096].reset_index(drop=True), b)


def test_shape_statistics():
  df = synthetic.generate(SMALL)
  assert df["user"].is_monotonic_increasing  # Grouped by user, like ratings.csv.
  assert not df.duplicated(["user", "item"]).any()
  assert df["item"].between(0, SMALL.n_items - 1).all()
  per_user = df.groupby("user").size()
  assert 0.8 * SMALL.mean_items_per_user < per_user.mean() < 1.2 * SMALL.mean_items_per_user
  assert per_user.std() > 10  # Log-normal activity, not constant.
  pop = np.sort(df.groupby("item").size().to_numpy())[::-1]
  assert pop[: len(pop) // 10].sum() > 0.3 * pop.sum()  # Skewed popularity.
  r = df["rating"].to_numpy()
  assert set(np.unique(r * 2)) <= set(range(1, 11))
  assert 0.35 < (r > 3.5).mean() < 0.65


def _ndcg100(scores, fold, held):
  s = np.where(fold > 0, -np.inf, scores)
  top = np.argsort(-s, axis=1)[:, :100]
  hits = np.take_along_axis(held, top, 1)
  disc = 1.0 / np.log2(np.arange(2, 102))
  n = held.sum(1).astype(int)
  idcg = np.array([disc[:min(k, 100)].sum() for k in n])
  m = n > 0
  return float(((hits * disc).sum(1)[m] / idcg[m]).mean())


def _svd_vs_popularity(df):
  split = protocol.run_protocol(df, protocol.ProtocolParams(heldout_users=200))
  data = processed.split_to_processed({k: getattr(split, k) for k in (
      "train", "validation_tr", "validation_te", "test_tr", "test_te")}, split.unique_sid, {})
  x = data.train.to_dense(np.float64)
  fold = data.validation.fold_in.to_dense(np.float64)
  held = data.validation.held_out.to_dense(np.float64)
  v = np.linalg.eigh(x.T @ x)[1][:, -16:]  # Rank-16 item subspace (top right singular vectors).
  pop = _ndcg100(np.tile(x.sum(0), (len(fold), 1)), fold, held)
  svd = _ndcg100(fold @ v @ v.T, fold, held)
  return pop, svd


def test_low_rank_model_beats_popularity():
  pop, svd = _svd_vs_popularity(synthetic.generate(SMALL))
  assert svd > pop + 0.05, (pop, svd)


def test_resampling_path_for_large_catalogues(monkeypatch):
  # The approximate sampler used above 32k items / 1e9 scores, forced on a small spec.
  monkeypatch.setattr(synthetic, "_EXACT_MAX_SCORES", 0)
  df = synthetic.generate(SMALL)
  pd.testing.assert_frame_equal(df, synthetic.generate(SMALL))
  assert not df.duplicated(["user", "item"]).any()
  per_user = df.groupby("user").size()
  assert 0.7 * SMALL.mean_items_per_user < per_user.mean() < 1.2 * SMALL.mean_items_per_user
  # Its taste signal is weaker than exact sampling's (candidates come from popularity), but the
  # chosen items lean towards the user's taste: affinity is N(0, 1) for a random (user, item).
  sir = np.concatenate([b[2] for b in synthetic.iter_blocks(SMALL)]).mean()
  monkeypatch.undo()
  exact = np.concatenate([b[2] for b in synthetic.iter_blocks(SMALL)]).mean()
  assert 0.3 < sir < exact, (sir, exact)


@pytest.mark.parametrize("fmt", ["ml20m", "msd", "netflix"])
def test_write_raw_round_trip(tmp_path, fmt):
  spec = synthetic.SyntheticSpec(n_users=300, n_items=120, mean_items_per_user=12.0, seed=5)
  path = str(tmp_path / {"ml20m": "ratings.csv", "msd": "train_triplets.txt",
                         "netflix": "combined_data_1.txt"}[fmt])
  stats = synthetic.write_raw(path, spec, fmt)
  gen = synthetic.generate(spec)
  assert stats["rows"] == len(gen)
  df = {"ml20m": movielens.read_ml20m, "msd": msd.read_msd, "netflix": netflix.read_netflix}[fmt](
      path)
  assert len(df) == len(gen)
  assert df["user"].nunique() == stats["users"] and df["item"].nunique() == stats["items"]
  if fmt == "ml20m":
    np.testing.assert_array_equal(df["user"].to_numpy(), gen["user"].to_numpy() + 1)
    np.testing.assert_array_equal(df["rating"].to_numpy(), gen["rating"].to_numpy())
    # Item ids map one to one.
    pairs = pd.DataFrame({"a": df["item"].to_numpy(), "b": gen["item"].to_numpy()})
    assert pairs.drop_duplicates().shape[0] == df["item"].nunique()
  elif fmt == "netflix":
    assert df["item"].is_monotonic_increasing and df["rating"].isin([1, 2, 3, 4, 5]).all()
    assert sorted(df.groupby("item").size().tolist()) == sorted(
        gen.groupby("item").size().tolist())
  else:
    users = df["user"].astype(object).to_numpy()
    assert all(len(u) == 40 for u in users[:50]) and df["rating"].min() >= 1
    assert all(s.startswith("SO") and len(s) == 18 for s in df["item"].astype(object)[:50])


def test_config_spec():
  from configs import default  # pylint: disable=g-import-not-at-top
  spec = synthetic.SyntheticSpec.from_config(default.get_config().data.synthetic)
  assert spec.n_users == 3000 and spec.n_items == 1000 and spec.rank == 16
