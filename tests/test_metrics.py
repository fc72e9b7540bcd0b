"""Tests for ract_jax.metrics against a plain numpy reference (argsort, one user at a time)."""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import re

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


# ---- Input rules: each case a hostile user hit before the checks (see the module docstring) ----

_FNS = {
    "ndcg_at_k": lambda s, h: metrics.ndcg_at_k(s, h, 5),
    "recall_at_k": lambda s, h: metrics.recall_at_k(s, h, 5),
    "ranking_metrics": lambda s, h: metrics.ranking_metrics(s, h, ndcg_ks=(5,), recall_ks=(5,)),
}


@pytest.mark.parametrize("name", list(_FNS))
def test_heldout_narrower_than_scores_raises(name):
  # Before: NaN (the gather read past the last column).
  scores, heldout = _random_case(8, b=3, m=5)
  with pytest.raises(ValueError, match=rf"^{name}: heldout has shape \(3, 4\) but scores has "
                     r"shape \(3, 5\); pass one column per item in both"):
    _FNS[name](scores, heldout[:, :4])


@pytest.mark.parametrize("name", list(_FNS))
def test_one_heldout_row_is_not_broadcast_over_users(name):
  # Before: the single row was broadcast to all three users.
  scores, heldout = _random_case(9, b=3, m=5)
  with pytest.raises(ValueError, match=rf"^{name}: heldout has shape \(1, 5\) but scores has "
                     r"shape \(3, 5\); pass one row of heldout per row of scores$"):
    _FNS[name](scores, heldout[:1])


@pytest.mark.parametrize("name", list(_FNS))
def test_shape_checks_also_run_when_traced(name):
  scores, heldout = _random_case(10, b=3, m=5)
  with pytest.raises(ValueError, match=r"heldout has shape \(1, 5\) but scores has shape"):
    jax.jit(_FNS[name])(scores, heldout[:1])


@pytest.mark.parametrize("name", list(_FNS))
def test_one_dimensional_inputs_raise(name):
  # Before: take_along_axis's ValueError ('indices and arr must have the same number of
  # dimensions'), or an IndexError when both were 1-D.
  s, h = np.array([0.3, 0.9, 0.1, 0.5, 0.2], np.float32), np.array([0, 1, 0, 0, 1], np.float32)
  with pytest.raises(ValueError, match=rf"^{name}: scores must be 2-D \[B, M\] \(users x items\), "
                     r"got shape \(5,\); for one user pass scores\[None\]"):
    _FNS[name](s, h[None])
  with pytest.raises(ValueError, match=rf"^{name}: heldout must be 2-D .* got shape \(5,\)"):
    _FNS[name](s[None], h)


@pytest.mark.parametrize("name", list(_FNS))
def test_python_lists_are_accepted_like_arrays(name):
  # Before: AttributeError ('list' object has no attribute 'shape').
  scores, heldout = _random_case(11, b=3, m=6)
  got = _FNS[name](scores.tolist(), heldout.astype(int).tolist())
  want = _FNS[name](jnp.asarray(scores), jnp.asarray(heldout))
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name", list(_FNS))
def test_bad_dtypes_and_unconvertible_inputs_raise(name):
  scores, heldout = _random_case(12, b=2, m=5)
  with pytest.raises(TypeError, match=rf"^{name}: scores must be floating .* got dtype int32"):
    _FNS[name](np.ones(scores.shape, np.int32), heldout)
  with pytest.raises(TypeError, match=rf"^{name}: heldout must be bool, integer or floating"):
    _FNS[name](scores, heldout.astype(np.complex64))
  with pytest.raises(TypeError, match=rf"^{name}: scores must be an array \[B, M\]"):
    _FNS[name]([[0.1, 0.2], [0.3]], heldout[:, :2])
  with pytest.raises(ValueError, match=rf"^{name}: scores has shape \(2, 0\): no items to rank"):
    _FNS[name](np.zeros((2, 0), np.float32), np.zeros((2, 0), np.float32))


@pytest.mark.parametrize("bad", [2.0, -1.0, 0.5, np.nan])
@pytest.mark.parametrize("name", list(_FNS))
def test_heldout_values_other_than_0_1_raise_outside_jit(name, bad):
  # Before: a 2 counted twice in DCG and in n_heldout and changed NDCG without a word.
  scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]], np.float32)
  heldout = np.array([[0, 1, 0, 0, 0, 1]], np.float32)
  heldout[0, 3] = bad
  with pytest.raises(ValueError, match=rf"^{name}: heldout must hold only 0 and 1 \(binary "
                     rf"relevance\), but 1 of its entries do not, the first heldout\[0, 3\] = "
                     rf"{re.escape(repr(float(bad)))}; pass \(heldout > 0\) or a bool array"):
    _FNS[name](scores, heldout)
  with pytest.raises(ValueError, match=r"heldout\[0, 3\] = 2; "):  # integer heldout too
    _FNS[name](scores, np.array([[0, 1, 0, 2, 0, 1]], np.int32))
  # What the message proposes gives the binarised value, the same as a bool array.
  got = jax.tree.leaves(_FNS[name](scores, jnp.asarray(heldout) > 0))
  want = jax.tree.leaves(_FNS[name](scores, heldout > 0))
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)


def test_ranking_metrics_cutoffs_must_be_sequences_of_ints():
  scores, heldout = _random_case(13, b=2, m=5)
  with pytest.raises(TypeError, match=r"^ranking_metrics: ndcg_ks must be a sequence of Python "
                     r"ints, got int: 5; for one cut-off pass \(5,\)$"):
    metrics.ranking_metrics(scores, heldout, ndcg_ks=5)
  with pytest.raises(TypeError, match=r"^ranking_metrics: each of recall_ks must be a Python int"):
    metrics.ranking_metrics(scores, heldout, recall_ks=(5, 2.5))


def test_heldout_values_are_trusted_under_jit():
  # The documented rule: tracers cannot be inspected, so under jit heldout is used as given (the
  # trainer and the evaluator build it from masks). Pinned so that the docstring stays true.
  scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]], np.float32)
  heldout = np.array([[0, 1, 0, 2, 0, 1]], np.float32)
  disc = 1 / np.log2(np.arange(2, 7))
  got = float(jax.jit(lambda s, h: metrics.ndcg_at_k(s, h, 5))(scores, heldout)[0])
  assert got == pytest.approx((disc[1] + 2 * disc[3]) / disc[:4].sum(), rel=1e-6)
  binary = float(metrics.ndcg_at_k(scores, heldout > 0, 5)[0])
  assert binary == pytest.approx((disc[1] + disc[3]) / disc[:3].sum(), rel=1e-6)


def _nan_and_inf_case():
  """Rows: all NaN, all -inf, NaN among finite scores, and a held-out item masked to -inf."""
  heldout = np.zeros((4, 8), np.float32)
  heldout[:, [0, 1, 6]] = 1  # Items 0 and 1 won ties by index before the rules.
  scores = np.full((4, 8), np.nan, np.float32)
  scores[1] = -np.inf
  scores[2] = [np.nan, 0.1, 0.5, np.nan, 0.2, 0.3, 0.9, 0.4]
  scores[3] = [-np.inf, 0.1, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf]
  return scores, heldout


def test_all_nan_and_all_minus_inf_rows_score_zero():
  # Before: 0.69 for NDCG@5 on both rows (ties broken by index made items 0 and 1 hits).
  scores, heldout = _nan_and_inf_case()
  for k in (1, 5, 8):
    np.testing.assert_array_equal(metrics.ndcg_at_k(scores[:2], heldout[:2], k), [0.0, 0.0])
    np.testing.assert_array_equal(metrics.recall_at_k(scores[:2], heldout[:2], k), [0.0, 0.0])


def _ref_under_rules(scores, heldout, k):
  """NDCG@k and Recall@k with NaN ranked as -inf and no hit at -inf (numpy, one user at a time)."""
  clean = np.where(np.isnan(scores), -np.inf, scores)
  ndcg, recall = np.zeros(len(scores)), np.zeros(len(scores))
  for u in range(len(scores)):
    n = int(heldout[u].sum())
    top = _ref_rank(clean[u])[:k]
    hit = [heldout[u, i] > 0 and np.isfinite(clean[u, i]) for i in top]
    ndcg[u] = (sum(1 / np.log2(r + 2) for r, h in enumerate(hit) if h) /
               sum(1 / np.log2(r + 2) for r in range(min(n, k))))
    recall[u] = sum(hit) / min(n, k)
  return ndcg, recall


def test_nan_ranks_as_minus_inf_and_minus_inf_is_never_a_hit():
  scores, heldout = _nan_and_inf_case()
  for k in (1, 2, 5, 8):
    want_ndcg, want_recall = _ref_under_rules(scores, heldout, k)
    np.testing.assert_allclose(metrics.ndcg_at_k(scores, heldout, k), want_ndcg, atol=1e-6)
    np.testing.assert_allclose(metrics.recall_at_k(scores, heldout, k), want_recall, atol=1e-6)
  # By hand for row 2 at k = 2: ranked 6 (0.9, hit), 2 (0.5): DCG = 1, IDCG = 1 + 1/log2(3).
  assert float(metrics.ndcg_at_k(scores, heldout, 2)[2]) == pytest.approx(1 / (1 + 1 / np.log2(3)))
  # Row 3: the only finite item (1, a hit) ranks first; item 0, held out but at -inf, never counts.
  assert float(metrics.recall_at_k(scores, heldout, 8)[3]) == pytest.approx(1 / 3)
  # The same values from ranking_metrics, and inside a user's jit.
  out = jax.jit(lambda s, h: metrics.ranking_metrics(s, h, ndcg_ks=(2, 5), recall_ks=(8,)))(
      scores, heldout)
  np.testing.assert_array_equal(out["ndcg@2"], metrics.ndcg_at_k(scores, heldout, 2))
  np.testing.assert_array_equal(out["ndcg@5"], metrics.ndcg_at_k(scores, heldout, 5))
  np.testing.assert_array_equal(out["recall@8"], metrics.recall_at_k(scores, heldout, 8))
  np.testing.assert_array_equal(out["n_heldout"], [3, 3, 3, 3])


def _bench_module():
  path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "bench_metrics.py"
  spec = importlib.util.spec_from_file_location("ract_experiments_bench_metrics", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("heldout_dtype", [np.float32, bool])
def test_rules_change_no_bit_on_real_shaped_data(heldout_dtype):
  # ML-20M's width, ~60 held-out and ~100 fold-in items at -inf per user: the old code path (kept
  # as the benchmark's baseline) and the checked functions must agree exactly.
  bench = _bench_module()
  scores, heldout = bench.make_batch(96, 20108, 60, 100, seed=3)
  heldout = heldout.astype(heldout_dtype)
  assert (np.isfinite(scores).sum(1) >= 200).all()  # Every top k (k <= 200) is finite.
  ndcg_ks, recall_ks = (10, 20, 50, 100, 200), (10, 20, 50, 100)  # The evaluator's defaults.
  old = bench.bare_ranking_metrics(scores, heldout, ndcg_ks=ndcg_ks, recall_ks=recall_ks)
  new = metrics.ranking_metrics(scores, heldout, ndcg_ks, recall_ks)
  assert sorted(old) == sorted(new)
  for name in old:
    np.testing.assert_array_equal(new[name], old[name], err_msg=name)
  for k in (1, 20, 100):
    np.testing.assert_array_equal(metrics.ndcg_at_k(scores, heldout, k),
                                  bench.bare_ndcg_at_k(scores, heldout, k), err_msg=f"ndcg@{k}")
  for k in (10, 100):  # Recall is a ratio of whole numbers: the same in any program.
    np.testing.assert_array_equal(metrics.recall_at_k(scores, heldout, k), old[f"recall@{k}"])


def test_summarize_wants_aligned_1d_inputs():
  # Before: a [N, 1] per_user was flattened silently and mismatched lengths named no argument.
  with pytest.raises(ValueError, match=r"^summarize: per_user has shape \(3, 1\) and n_heldout has "
                     r"shape \(3,\); both must be 1-D \[N\], one entry per user, aligned$"):
    metrics.summarize(np.zeros((3, 1)), np.ones(3))
  with pytest.raises(ValueError, match=r"per_user has shape \(3,\) and n_heldout has shape \(4,\)"):
    metrics.summarize(np.zeros(3), np.ones(4))
  with pytest.raises(ValueError, match=r"n_heldout has shape \(1, 3\)"):
    metrics.summarize(np.zeros(3), np.ones((1, 3)))
  assert metrics.summarize([0.5, 1.0], [1, 2])["mean"] == pytest.approx(0.75)  # lists are fine


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
