"""Tests for the WMF, SLIM and CDAE baselines (small problems, numpy references)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ract_jax.baselines import cdae, slim, wmf
from ract_jax.data.csr import CSR


def _csr(dense: np.ndarray) -> CSR:
  rows, items = np.nonzero(dense)
  return CSR.from_pairs(rows, items, dense.shape[0], dense.shape[1])


def _random_binary(seed: int, n: int, m: int, p: float) -> np.ndarray:
  x = (np.random.RandomState(seed).rand(n, m) < p).astype(np.float32)
  x[0] = 0.0  # A row without items: its exact solution is 0.
  return x


def _ridge_rows(x: np.ndarray, fixed: np.ndarray, alpha: float, lam: float) -> np.ndarray:
  """Direct solves of `(F^T C_r F + lam I) f = F^T C_r p_r`, one row at a time, float64."""
  f = fixed.astype(np.float64)
  out = []
  for row in x.astype(np.float64):
    c = 1.0 + alpha * row
    a = f.T @ (c[:, None] * f) + lam * np.eye(f.shape[1])
    out.append(np.linalg.solve(a, f.T @ (c * row)))
  return np.array(out)


# --------------------------------------------------------------------------------------------- WMF


@pytest.mark.parametrize("layout_kwargs", [{}, dict(width=2, rows_per_group=3,
                                                     entries_per_group=4, segs_per_step=2)])
def test_wmf_half_steps_match_numpy(layout_kwargs):
  x = _random_binary(0, 30, 12, 0.3)
  alpha, lam, k = 3.0, 0.5, 4
  rng = np.random.RandomState(1)
  v = rng.randn(12, k).astype(np.float32)
  u = rng.randn(30, k).astype(np.float32)
  train = _csr(x)
  users = wmf.layout(train, **layout_kwargs)
  items = wmf.layout(wmf._transpose(train), **layout_kwargs)
  np.testing.assert_allclose(np.asarray(wmf.half_step(users, v, alpha, lam)),
                             _ridge_rows(x, v, alpha, lam), atol=2e-5, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(wmf.half_step(items, u, alpha, lam)),
                             _ridge_rows(x.T, u, alpha, lam), atol=2e-5, rtol=1e-4)
  # The dense fold-in used by `scores` is the same user half-step (several item chunks here).
  np.testing.assert_allclose(np.asarray(wmf.fold_in(v, x, alpha, lam, max_chunk=5)),
                             _ridge_rows(x, v, alpha, lam), atol=2e-5, rtol=1e-4)


def test_wmf_objective_decreases_monotonically():
  x = _random_binary(2, 40, 15, 0.25)
  train = _csr(x)
  als = wmf.ALS(train, k=5, alpha=4.0, lam=0.3, seed=0, width=4, entries_per_group=16)
  values = []
  for _ in range(8):
    als.update_users()
    values.append(als.objective())
    als.update_items()
    values.append(als.objective())
  values = np.array(values)
  assert np.all(np.diff(values) <= 1e-5 * values[:-1]), values
  assert values[-1] < 0.8 * values[0]
  # objective() agrees with the plain definition.
  uu, vv = np.asarray(als.user_factors, np.float64), np.asarray(als.item_factors, np.float64)
  c = 1.0 + 4.0 * x
  direct = np.sum(c * (x - uu @ vv.T)**2) + 0.3 * (np.sum(uu**2) + np.sum(vv**2))
  np.testing.assert_allclose(values[-1], direct, rtol=1e-9)


def test_wmf_fit_and_scores_under_jit():
  x = _random_binary(3, 50, 20, 0.3)
  params = wmf.fit(_csr(x), k=6, alpha=2.0, lam=1.0, iters=3)
  assert params["item_factors"].shape == (20, 6)
  fold = _random_binary(4, 7, 20, 0.3)
  s = np.asarray(jax.jit(wmf.scores)(params, jnp.asarray(fold)))
  v = np.asarray(params["item_factors"], np.float64)
  want = _ridge_rows(fold, v, 2.0, 1.0) @ v.T
  assert s.shape == (7, 20) and s.dtype == np.float32
  np.testing.assert_allclose(s, want, atol=1e-4, rtol=1e-4)


# -------------------------------------------------------------------------------------------- SLIM


def _slim_reference(g: np.ndarray, l1: float, l2: float) -> np.ndarray:
  """Plain cyclic coordinate descent per column (float64), run to convergence."""
  m = g.shape[0]
  w_all = np.zeros((m, m))
  for j in range(m):
    w = np.zeros(m)
    for _ in range(50_000):
      old = w.copy()
      for i in range(m):
        if i == j:
          continue
        r = g[i, j] - g[i] @ w + g[i, i] * w[i]
        w[i] = max(0.0, (r - l1) / (g[i, i] + l2))
      if np.abs(w - old).max() < 1e-12:
        break
    w_all[:, j] = w
  return w_all


@pytest.mark.parametrize("l1,l2", [(0.5, 1.0), (0.1, 5.0), (5.0, 0.1), (0.0, 0.5), (2.0, 0.0)])
def test_slim_matches_reference_and_kkt(l1, l2):
  x = _random_binary(5, 40, 8, 0.4).astype(np.float64)
  g = x.T @ x
  w, info = slim.fit(_csr(x.astype(np.float32)), l1=l1, l2=l2, iters=5000, tol=1e-6,
                     return_info=True)
  w = np.asarray(w, np.float64)
  assert w.shape == (8, 8)
  assert np.all(w >= 0.0) and np.all(np.diag(w) == 0.0)
  assert int(info.iters) < 5000  # Converged to tol.
  np.testing.assert_allclose(w, _slim_reference(g, l1, l2), atol=1e-4)
  # KKT of each column's problem: grad_i = (G w - g_j + l2 w)_i + l1 is 0 where w_i > 0 and
  # >= 0 where w_i = 0 (i != j).
  grad = g @ w - g + l2 * w + l1
  off = ~np.eye(8, dtype=bool)
  pos = (w > 1e-6) & off
  assert np.all(np.abs(grad[pos]) < 1e-3), np.abs(grad[pos]).max()
  assert np.all(grad[(w == 0) & off] > -1e-3)
  # And the objective is not above the reference's.
  ref = _slim_reference(g, l1, l2)
  assert slim.objective(x, w, l1, l2) <= slim.objective(x, ref, l1, l2) + 1e-6


def test_slim_scores_under_jit_and_size_cap():
  x = _random_binary(6, 30, 6, 0.5)
  w = slim.fit(_csr(x), l1=0.5, l2=1.0, iters=500)
  fold = jnp.asarray(_random_binary(7, 4, 6, 0.5))
  s = np.asarray(jax.jit(slim.scores)(w, fold))
  np.testing.assert_allclose(s, np.asarray(fold) @ np.asarray(w), rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match="config.baselines.slim_max_items"):
    slim.fit(_csr(x), max_items=5)


# -------------------------------------------------------------------------------------------- CDAE


def _clustered(seed: int, n_users: int, n_items: int = 60, n_groups: int = 3):
  """Users of 3 taste groups, each liking mostly its own 20 items (a rank-3 structure)."""
  rng = np.random.RandomState(seed)
  group = rng.randint(n_groups, size=n_users)
  block = n_items // n_groups
  prob = np.full((n_users, n_items), 0.02)
  for u, gr in enumerate(group):
    prob[u, gr * block:(gr + 1) * block] = 0.6
  return (rng.rand(n_users, n_items) < prob).astype(np.float32)


def _ndcg(scores: np.ndarray, heldout: np.ndarray, k: int) -> float:
  vals = []
  for s, h in zip(scores, heldout):
    n = int(h.sum())
    if n == 0:
      continue
    top = np.argsort(-s, kind="stable")[:k]
    dcg = np.sum(h[top] / np.log2(np.arange(2, k + 2)))
    idcg = np.sum(1.0 / np.log2(np.arange(2, min(n, k) + 2)))
    vals.append(dcg / idcg)
  return float(np.mean(vals))


def test_cdae_ranks_heldout_items_better_than_random():
  train = _clustered(8, 300)
  test = _clustered(9, 60)
  rng = np.random.RandomState(10)
  fold, held = test.copy(), np.zeros_like(test)
  for u in range(test.shape[0]):
    items = np.nonzero(test[u])[0]
    out = rng.choice(items, size=max(1, len(items) // 5), replace=False)
    fold[u, out], held[u, out] = 0.0, 1.0
  params = cdae.fit(_csr(train), hidden=8, epochs=40, lr=1e-2, batch_size=50, fold_in_steps=20,
                    seed=0)
  score_fn = jax.jit(cdae.scores)
  s = np.asarray(score_fn(params, jnp.asarray(fold)))
  assert s.shape == fold.shape and np.all(np.isfinite(s))
  masked = np.where(fold > 0, -np.inf, s)
  ndcg = _ndcg(masked, held, 10)
  rand = np.mean([_ndcg(np.where(fold > 0, -np.inf, rng.rand(*fold.shape)), held, 10)
                  for _ in range(5)])
  assert ndcg > rand + 0.2, (ndcg, rand)
  # The zero-embedding variant (no fold-in optimisation) also works under jit.
  zero = dict(params, fold_in_steps=jnp.int32(0))
  s0 = np.asarray(score_fn(zero, jnp.asarray(fold)))
  assert _ndcg(np.where(fold > 0, -np.inf, s0), held, 10) > rand + 0.2
  # Fold-in lowers each held-out user's own objective below the zero embedding's.
  x = jnp.asarray(fold)
  pre = x @ params["enc_w"] + params["enc_b"]

  def own_loss(v):
    y = cdae.decode(params, pre, v)
    return cdae.user_loss(y, x, params["neg_weight"]) + 0.5 * params["weight_decay"] * jnp.sum(
        v * v, axis=-1)

  v = cdae.fold_in(params, x)
  assert np.all(np.asarray(own_loss(v)) <= np.asarray(own_loss(jnp.zeros_like(v))) + 1e-4)
