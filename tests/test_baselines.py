"""Tests for the popularity and EASE baselines."""

from __future__ import annotations

import numpy as np
import pytest

from ract_jax.baselines import ease, popularity
from ract_jax.data.csr import CSR


def _random_csr(seed: int, n_users: int = 40, n_items: int = 6, p: float = 0.4) -> CSR:
  rng = np.random.RandomState(seed)
  dense = rng.rand(n_users, n_items) < p
  rows, items = np.nonzero(dense)
  return CSR.from_pairs(rows, items, n_users, n_items)


def _closed_form(x: np.ndarray, lam: float) -> np.ndarray:
  m = x.shape[1]
  p = np.linalg.inv(x.T @ x + lam * np.eye(m))
  return np.eye(m) - p @ np.diag(1.0 / np.diag(p))


def test_popularity_counts_and_scores():
  train = CSR.from_pairs(np.array([0, 0, 1, 2, 2, 2]), np.array([1, 3, 3, 0, 3, 1]), 3, 5)
  counts = popularity.fit(train)
  assert counts.dtype == np.float32
  np.testing.assert_array_equal(counts, [1, 2, 0, 3, 0])
  fold_in = np.zeros((4, 5), np.float32)
  s = np.asarray(popularity.scores(counts, fold_in))
  assert s.shape == (4, 5)
  np.testing.assert_array_equal(s, np.tile(counts, (4, 1)))


def test_gram_matrix_blocks():
  train = _random_csr(0, n_users=30, n_items=7)
  x = train.to_dense(np.float64)
  for block in (1, 3, 1024):
    g = ease.gram_matrix(train, block_items=block)
    assert g.dtype == np.float32 and g.shape == (7, 7)
    np.testing.assert_array_equal(g, x.T @ x)


@pytest.mark.parametrize("lam", [1.0, 5.0, 50.0])
def test_ease_matches_closed_form(lam):
  train = _random_csr(1)
  x = train.to_dense(np.float64)
  want = _closed_form(x, lam)
  b64 = ease.fit(train, lam, float64=True)
  b32 = np.asarray(ease.fit(train, lam))
  for b, tol in ((b64, 1e-6), (b32, 2e-5)):
    assert b.dtype == np.float32 and b.shape == (6, 6)
    np.testing.assert_allclose(b, want, atol=tol)
    np.testing.assert_array_equal(np.diag(b), 0.0)


def test_ease_is_constrained_ridge_regression():
  """Column j of B solves min ||x_j - X b||^2 + lam ||b||^2 subject to b_j = 0."""
  lam = 3.0
  train = _random_csr(2, n_users=50, n_items=6, p=0.5)
  x = train.to_dense(np.float64)
  b = np.asarray(ease.fit(train, lam), np.float64)
  m = x.shape[1]
  for j in range(m):
    others = [i for i in range(m) if i != j]
    xo = x[:, others]
    col = np.linalg.solve(xo.T @ xo + lam * np.eye(m - 1), xo.T @ x[:, j])
    np.testing.assert_allclose(b[others, j], col, atol=2e-5)
    assert b[j, j] == 0.0

  # And B is a stationary point of the full objective over zero-diagonal matrices: a small
  # off-diagonal perturbation does not lower it.
  def objective(bb):
    return np.sum((x - x @ bb)**2) + lam * np.sum(bb**2)

  b64 = ease.fit(train, lam, float64=True).astype(np.float64)
  rng = np.random.RandomState(0)
  for _ in range(5):
    d = rng.randn(m, m) * 1e-3
    np.fill_diagonal(d, 0.0)
    assert objective(b64 + d) >= objective(b64) - 1e-9


def test_fit_from_gram_reuses_gram():
  train = _random_csr(3)
  g = ease.gram_matrix(train)
  g_before = g.copy()
  b1 = np.asarray(ease.fit_from_gram(g, 10.0))
  b2 = np.asarray(ease.fit_from_gram(g, 100.0))
  np.testing.assert_array_equal(g, g_before)
  np.testing.assert_allclose(b1, _closed_form(train.to_dense(np.float64), 10.0), atol=2e-5)
  np.testing.assert_allclose(b2, _closed_form(train.to_dense(np.float64), 100.0), atol=2e-5)
  with pytest.raises(ValueError):
    ease.fit_from_gram(g, 0.0)


def test_ease_scores():
  train = _random_csr(4)
  b = ease.fit(train, 5.0)
  x = train.to_dense()[:7]
  np.testing.assert_allclose(ease.scores(b, x), x @ np.asarray(b), atol=1e-6)


def test_ease_max_items_cap():
  train = _random_csr(5, n_items=6)
  with pytest.raises(ValueError, match="config.baselines.ease_max_items"):
    ease.fit(train, 10.0, max_items=5)
  ease.fit(train, 10.0, max_items=6)  # at the cap: fine


def test_max_items_in_memory():
  assert ease.max_items_in_memory(12 * 1000**2) == 1000
  assert ease.max_items_in_memory(12 * 1000**2 - 1) == 999
  assert ease.max_items_in_memory(16 * 1000**2, n_matrices=4) == 1000
  assert 38_000 < ease.max_items_in_memory(24e9, n_matrices=4) < 39_000
  assert 81_000 < ease.max_items_in_memory(80e9) < 82_000
