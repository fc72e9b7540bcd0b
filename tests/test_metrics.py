"""Tests for ract_jax.metrics against a plain numpy reference (argsort, one user at a time)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ract_jax import metrics


def _ref_rank(scores_row: np.ndarray) -> np.ndarray:
  # Stable sort of the negated scores: among equal scores the lower index comes first, which is
  # the documented `lax.top_k` order.
  return np.argsort(-scores_row.astype(np.float64), kind="stable")


def ref_ndcg(scores: np.ndarray, heldout: np.ndarray, k: int) -> np.ndarray:
  out = np.zeros(scores.shape[0])
  for u in range(scores.shape[0]):
    rel = heldout[u] > 0
    n = int(rel.sum())
    if n == 0:
      continue
    top = _ref_rank(scores[u])[:k]
    dcg = sum(1.0 / np.log2(r + 2) for r, i in enumerate(top) if rel[i])
    idcg = sum(1.0 / np.log2(r + 2) for r in range(min(n, k)))
    out[u] = dcg / idcg
  return out


def ref_recall(scores: np.ndarray, heldout: np.ndarray, k: int) -> np.ndarray:
  out = np.zeros(scores.shape[0])
  for u in range(scores.shape[0]):
    rel = heldout[u] > 0
    n = int(rel.sum())
    if n == 0:
      continue
    top = _ref_rank(scores[u])[:k]
    out[u] = rel[top].sum() / min(k, n)
  return out


def _random_case(seed: int, b: int = 16, m: int = 60, p_heldout: float = 0.15,
                 p_foldin: float = 0.2):
  rng = np.random.RandomState(seed)
  scores = rng.randn(b, m).astype(np.float32)
  foldin = rng.rand(b, m) < p_foldin
  heldout = (rng.rand(b, m) < p_heldout) & ~foldin
  heldout[0] = False  # a user with no held-out item
  scores[foldin] = -np.inf
  return scores, heldout.astype(np.float32)


@pytest.mark.parametrize("k", [1, 5, 10, 59, 60, 61, 500])
def test_random_matches_reference(k):
  scores, heldout = _random_case(0)
  np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, k), ref_ndcg(scores, heldout, k),
                             atol=1e-6)
  np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, k),
                             ref_recall(scores, heldout, k), atol=1e-6)


def test_outputs_are_float32_per_user():
  scores, heldout = _random_case(1)
  for fn in (metrics.ndcg_at_k, metrics.recall_at_k):
    out = fn(jnp.asarray(scores), jnp.asarray(heldout), 10)
    assert out.shape == (scores.shape[0],) and out.dtype == jnp.float32


def test_bool_heldout_equals_float():
  scores, heldout = _random_case(2)
  np.testing.assert_array_equal(metrics.ndcg_at_k(scores, heldout > 0, 10),
                                metrics.ndcg_at_k(scores, heldout, 10))
  np.testing.assert_array_equal(metrics.recall_at_k(scores, heldout > 0, 10),
                                metrics.recall_at_k(scores, heldout, 10))


def test_hand_computed_values():
  # Items ranked 3, 1, 0, 2 (scores 0.9 > 0.5 > 0.2 > 0.1); held out: items 1 and 2.
  scores = np.array([[0.2, 0.5, 0.1, 0.9]], np.float32)
  heldout = np.array([[0, 1, 1, 0]], np.float32)
  idcg = 1 + 1 / np.log2(3)
  np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, 4),
                             [(1 / np.log2(3) + 1 / np.log2(5)) / idcg], atol=1e-7)
  np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, 2), [(1 / np.log2(3)) / idcg],
                             atol=1e-7)
  np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, 1), [0.0], atol=0)
  np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, 1), [0.0])
  np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, 2), [0.5])
  np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, 3), [0.5])
  np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, 4), [1.0])


def test_k_larger_than_heldout_uses_min_in_idcg_and_recall():
  # 2 held-out items, both at ranks 1 and 2: perfect at every k >= 2, recall denominator min(k, 2).
  scores = np.array([[5, 4, 3, 2, 1, 0]], np.float32)
  heldout = np.array([[1, 1, 0, 0, 0, 0]], np.float32)
  for k in (2, 3, 6, 100):
    np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, k), [1.0], atol=1e-7)
    np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, k), [1.0], atol=1e-7)
  np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, 1), [1.0], atol=1e-7)
  np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, 1), [1.0], atol=1e-7)


def test_no_heldout_rows_score_zero():
  scores = np.random.RandomState(3).randn(3, 20).astype(np.float32)
  heldout = np.zeros((3, 20), np.float32)
  for k in (1, 20, 50):
    np.testing.assert_array_equal(metrics.ndcg_at_k(scores, heldout, k), np.zeros(3))
    np.testing.assert_array_equal(metrics.recall_at_k(scores, heldout, k), np.zeros(3))
  out = metrics.ranking_metrics(scores, heldout, ndcg_ks=(5,), recall_ks=(5,))
  assert np.isfinite(np.asarray(out["ndcg@5"])).all()


def test_heldout_all_outside_top_k_scores_zero():
  scores = np.arange(30, 0, -1, dtype=np.float32)[None]  # item i has rank i + 1
  heldout = np.zeros((1, 30), np.float32)
  heldout[0, [12, 20, 29]] = 1
  for k in (1, 5, 12):
    assert float(metrics.ndcg_at_k(scores, heldout, k)[0]) == 0.0
    assert float(metrics.recall_at_k(scores, heldout, k)[0]) == 0.0
  assert float(metrics.recall_at_k(scores, heldout, 13)[0]) == pytest.approx(1 / 3)


def test_foldin_at_minus_inf_is_never_ranked_above_finite_items():
  # Fold-in items carry the highest raw scores; masked to -inf they must drop out of the top k.
  m = 10
  raw = np.linspace(1, 0, m, dtype=np.float32)[None]
  foldin = np.zeros((1, m), bool)
  foldin[0, :3] = True
  heldout = np.zeros((1, m), np.float32)
  heldout[0, 3] = 1
  masked = np.where(foldin, -np.inf, raw).astype(np.float32)
  assert float(metrics.ndcg_at_k(masked, heldout, 1)[0]) == pytest.approx(1.0)
  # With only 2 finite items and k = 5, -inf items fill the tail of the top 5 but are not hits.
  masked2 = np.full((1, m), -np.inf, np.float32)
  masked2[0, [3, 7]] = [0.5, 0.1]
  heldout2 = np.zeros((1, m), np.float32)
  heldout2[0, [7, 9]] = 1
  np.testing.assert_allclose(metrics.ndcg_at_k(masked2, heldout2, 5),
                             ref_ndcg(masked2, heldout2, 5), atol=1e-7)
  np.testing.assert_allclose(metrics.recall_at_k(masked2, heldout2, 5), [0.5], atol=1e-7)


def test_ties_prefer_lower_index():
  scores = np.zeros((1, 8), np.float32)  # all tied: rank order = index order
  heldout = np.zeros((1, 8), np.float32)
  heldout[0, [1, 6]] = 1
  np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, 2), ref_ndcg(scores, heldout, 2),
                             atol=1e-7)
  assert float(metrics.recall_at_k(scores, heldout, 2)[0]) == pytest.approx(0.5)
  _, idx = jax.lax.top_k(jnp.asarray([[1.0, 3.0, 3.0, 0.0, 3.0]]), 3)
  np.testing.assert_array_equal(idx, [[1, 2, 4]])
  # Heavy ties on random integer scores.
  rng = np.random.RandomState(4)
  scores = rng.randint(0, 3, size=(12, 40)).astype(np.float32)
  heldout = (rng.rand(12, 40) < 0.3).astype(np.float32)
  for k in (3, 10, 40):
    np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, k),
                               ref_ndcg(scores, heldout, k), atol=1e-6)
    np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, k),
                               ref_recall(scores, heldout, k), atol=1e-6)


def test_inside_user_jit_with_static_k():
  scores, heldout = _random_case(5)

  @functools.partial(jax.jit, static_argnames="k")
  def both(s, h, k):
    return metrics.ndcg_at_k(s, h, k) + 0.0, metrics.recall_at_k(s, h, k)

  @jax.jit
  def all_metrics(s, h):
    return metrics.ranking_metrics(s, h, ndcg_ks=(10, 100), recall_ks=(20,))

  for k in (7, 60):
    n, r = both(scores, heldout, k=k)
    np.testing.assert_allclose(n, ref_ndcg(scores, heldout, k), atol=1e-6)
    np.testing.assert_allclose(r, ref_recall(scores, heldout, k), atol=1e-6)
  out = all_metrics(scores, heldout)
  np.testing.assert_allclose(out["ndcg@10"], ref_ndcg(scores, heldout, 10), atol=1e-6)
  np.testing.assert_allclose(out["ndcg@100"], ref_ndcg(scores, heldout, 100), atol=1e-6)
  np.testing.assert_allclose(out["recall@20"], ref_recall(scores, heldout, 20), atol=1e-6)


def test_ranking_metrics_equals_individual_functions():
  scores, heldout = _random_case(6, b=20, m=300, p_heldout=0.05)
  ndcg_ks, recall_ks = (1, 10, 50, 100, 200), (10, 20, 50, 100)
  out = metrics.ranking_metrics(scores, heldout, ndcg_ks=list(ndcg_ks), recall_ks=recall_ks)
  assert sorted(out) == sorted(metrics.metric_names(ndcg_ks, recall_ks) + ["n_heldout"])
  for k in ndcg_ks:
    np.testing.assert_allclose(out[f"ndcg@{k}"], metrics.ndcg_at_k(scores, heldout, k), atol=1e-7)
    np.testing.assert_allclose(out[f"ndcg@{k}"], ref_ndcg(scores, heldout, k), atol=1e-6)
  for k in recall_ks:
    np.testing.assert_allclose(out[f"recall@{k}"], metrics.recall_at_k(scores, heldout, k),
                               atol=1e-7)
    np.testing.assert_allclose(out[f"recall@{k}"], ref_recall(scores, heldout, k), atol=1e-6)
  np.testing.assert_array_equal(out["n_heldout"], heldout.sum(1).astype(np.int32))
  np.testing.assert_array_equal(metrics.n_heldout(heldout), heldout.sum(1))


def test_invalid_k():
  scores, heldout = _random_case(7)
  with pytest.raises(ValueError):
    metrics.ndcg_at_k(scores, heldout, 0)
  with pytest.raises(TypeError):
    metrics.recall_at_k(scores, heldout, 2.0)
  with pytest.raises(ValueError):
    metrics.ranking_metrics(scores, heldout, ndcg_ks=(), recall_ks=())


def test_summarize():
  per_user = np.array([0.5, 0.0, 1.0, 0.25, 0.0])
  n = np.array([2, 0, 3, 1, 4])
  s = metrics.summarize(per_user, n)
  kept = np.array([0.5, 1.0, 0.25, 0.0])
  assert s["n_users"] == 4 and s["n_skipped"] == 1
  assert s["mean"] == pytest.approx(kept.mean())
  assert s["stderr"] == pytest.approx(np.std(kept) / 2.0)
  empty = metrics.summarize(np.zeros(2), np.zeros(2))
  assert np.isnan(empty["mean"]) and empty["n_users"] == 0 and empty["n_skipped"] == 2
