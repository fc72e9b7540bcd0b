"""Ranking metrics (NDCG@k, Recall@k) as pure, jittable JAX functions, plus host-side averaging.

These are both the evaluation metrics and the critic's training-time oracle (RaCT's target is
NDCG@100 of the actor's logits with the seen items at -inf and the dropped items as relevance).

Conventions, matching the authors' `evaluation_functions.py` and Liang et al.'s notebook:
  * The caller sets the scores of fold-in (seen) items to `-inf` before calling; nothing here masks.
  * Binary gains; rank r (1-based) is discounted by `1 / log2(r + 1)`.
  * NDCG@k: IDCG sums the first `min(n_heldout, k)` discounts.
  * Recall@k: hits in the top k divided by `min(k, n_heldout)` ("capped" recall; RecBole divides
    by `n_heldout` instead, so its numbers are not comparable).
  * A user with no held-out item scores 0 for every metric. This is the RaCT convention (their IDCG
    is floored at 0.1, so DCG = 0 gives 0, and Recall's denominator is `max(., 1)`); Liang's code
    would give NaN. The critic's targets rely on it. For reported means, `summarize` skips those
    users instead and says how many it skipped.

Tie-breaking: `jax.lax.top_k` puts the lower item index first among equal scores (documented in
its docstring and checked in the tests), i.e. the order of a stable descending argsort. Items at
`-inf` tie with each other, so they can enter the top k only when a row has fewer than k finite
scores, and they then come in index order; since the held-out matrix is 0 on fold-in items, they
never count as hits. NaN scores rank above `+inf` in `top_k`; they are not checked for here.

`k` (and the cut-off tuples of `ranking_metrics`) are static Python ints: every distinct value
compiles once. A `k` larger than the number of items M is clipped to M, which leaves both metrics
unchanged (no user has more than M held-out items).
"""

from __future__ import annotations

import functools
from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _discounts(k: int) -> jnp.ndarray:
  """`1 / log2(r + 1)` for r = 1..k, float32 `[k]` (computed in float64 on the host)."""
  return jnp.asarray(1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64)), jnp.float32)


def _top_hits(scores: jnp.ndarray, heldout: jnp.ndarray, k: int):
  """Relevance of the top-k items in rank order, float32 `[B, min(k, M)]`, and n_heldout `[B]`."""
  k = min(k, scores.shape[-1])
  _, idx = jax.lax.top_k(scores, k)
  hits = jnp.take_along_axis(heldout, idx, axis=-1).astype(jnp.float32)
  n_heldout = jnp.sum(heldout.astype(jnp.float32), axis=-1)
  return hits, n_heldout


def _ndcg_from_hits(hits: jnp.ndarray, n_heldout: jnp.ndarray, k: int) -> jnp.ndarray:
  """NDCG@k from the rank-ordered relevance of the top `>= min(k, M)` items."""
  k = min(k, hits.shape[-1])
  disc = _discounts(k)
  # Elementwise product + sum rather than a matmul: a float32 matmul may run at reduced precision
  # on accelerators (TF32 / bf16 passes) under the default precision.
  dcg = jnp.sum(hits[:, :k] * disc, axis=-1)
  idcg_table = jnp.concatenate([jnp.ones((1,), jnp.float32), jnp.cumsum(disc)])
  n = jnp.clip(n_heldout, 0, k).astype(jnp.int32)
  idcg = idcg_table[n]  # n == 0 reads the placeholder 1.0; the result is masked to 0 below.
  return jnp.where(n_heldout > 0, dcg / idcg, 0.0).astype(jnp.float32)


def _recall_from_hits(hits: jnp.ndarray, n_heldout: jnp.ndarray, k: int) -> jnp.ndarray:
  """Recall@k (denominator `min(k, n_heldout)`) from the rank-ordered relevance of the top items."""
  k = min(k, hits.shape[-1])
  n_hit = jnp.sum(hits[:, :k], axis=-1)
  denom = jnp.maximum(jnp.minimum(n_heldout, float(k)), 1.0)
  return jnp.where(n_heldout > 0, n_hit / denom, 0.0).astype(jnp.float32)


def _check_k(k) -> int:
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
    raise TypeError(f"k must be a Python int (static), got {type(k).__name__}: {k!r}")
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  return int(k)


@functools.partial(jax.jit, static_argnames="k")
def _ndcg_jit(scores, heldout, k):
  hits, n = _top_hits(scores, heldout, k)
  return _ndcg_from_hits(hits, n, k)


@functools.partial(jax.jit, static_argnames="k")
def _recall_jit(scores, heldout, k):
  hits, n = _top_hits(scores, heldout, k)
  return _recall_from_hits(hits, n, k)


def ndcg_at_k(scores: jnp.ndarray, heldout: jnp.ndarray, k: int) -> jnp.ndarray:
  """Per-user NDCG@k with binary relevance.

  Jitted with `k` static; also usable inside another `jax.jit` (pass `k` as a Python int).

  Args:
    scores: float `[B, M]`; fold-in items already set to `-inf` by the caller.
    heldout: 0/1 (float or bool) `[B, M]`; the relevant items (0 on fold-in items).
    k: cut-off, a Python int >= 1; values above M are clipped to M.

  Returns:
    float32 `[B]`; 0 for users without held-out items.
  """
  return _ndcg_jit(scores, heldout, k=_check_k(k))


def recall_at_k(scores: jnp.ndarray, heldout: jnp.ndarray, k: int) -> jnp.ndarray:
  """Per-user Recall@k = hits in the top k / `min(k, n_heldout)` (Liang / RaCT definition).

  Args:
    scores: float `[B, M]`; fold-in items already set to `-inf` by the caller.
    heldout: 0/1 (float or bool) `[B, M]`.
    k: cut-off, a Python int >= 1; values above M are clipped to M.

  Returns:
    float32 `[B]`; 0 for users without held-out items.
  """
  return _recall_jit(scores, heldout, k=_check_k(k))


def n_heldout(heldout: jnp.ndarray) -> jnp.ndarray:
  """Number of held-out items per user, int32 `[B]`, from a 0/1 `[B, M]` matrix."""
  return jnp.sum(heldout.astype(jnp.int32), axis=-1)


def metric_names(ndcg_ks: Iterable[int] = (100,), recall_ks: Iterable[int] = (20, 50)) -> list[str]:
  """The metric keys `ranking_metrics` returns (without 'n_heldout'), in its order."""
  return ([f"ndcg@{k}" for k in sorted(set(ndcg_ks))] +
          [f"recall@{k}" for k in sorted(set(recall_ks))])


@functools.partial(jax.jit, static_argnames=("ndcg_ks", "recall_ks"))
def _ranking_metrics_jit(scores, heldout, ndcg_ks, recall_ks):
  kmax = max(ndcg_ks + recall_ks)
  hits, n = _top_hits(scores, heldout, kmax)
  out = {}
  for k in ndcg_ks:
    out[f"ndcg@{k}"] = _ndcg_from_hits(hits, n, k)
  for k in recall_ks:
    out[f"recall@{k}"] = _recall_from_hits(hits, n, k)
  out["n_heldout"] = n.astype(jnp.int32)
  return out


def ranking_metrics(scores: jnp.ndarray, heldout: jnp.ndarray, ndcg_ks: Sequence[int] = (100,),
                    recall_ks: Sequence[int] = (20, 50)) -> dict[str, jnp.ndarray]:
  """All cut-offs from a single `top_k` at the largest k (what evaluation uses).

  Jitted with the cut-offs static; also usable inside another `jax.jit`.

  Args:
    scores: float `[B, M]`; fold-in items already set to `-inf` by the caller.
    heldout: 0/1 (float or bool) `[B, M]`.
    ndcg_ks: NDCG cut-offs (Python ints); duplicates are dropped.
    recall_ks: Recall cut-offs (Python ints); duplicates are dropped.

  Returns:
    dict with float32 `[B]` entries `'ndcg@k'` and `'recall@k'` (keys as in `metric_names`), and
    `'n_heldout'`, int32 `[B]` (pass it to `summarize`). Values equal `ndcg_at_k`/`recall_at_k`.
  """
  ndcg_ks = tuple(sorted({_check_k(k) for k in ndcg_ks}))
  recall_ks = tuple(sorted({_check_k(k) for k in recall_ks}))
  if not ndcg_ks and not recall_ks:
    raise ValueError("ranking_metrics needs at least one cut-off")
  return _ranking_metrics_jit(scores, heldout, ndcg_ks=ndcg_ks, recall_ks=recall_ks)


def summarize(per_user: np.ndarray, n_heldout: np.ndarray) -> dict:
  """Mean and standard error over users with at least one held-out item (host-side numpy).

  Users without held-out items are skipped (Liang's mean would be NaN; RaCT's would count them as
  0, so RaCT's reported mean is lower by the fraction skipped). RaCT's test loop also drops the
  last partial batch of 500 users (`drop_remainder=True`); this averages over all users given.

  Args:
    per_user: `[N]` per-user metric values (e.g. concatenated `ranking_metrics` outputs).
    n_heldout: `[N]` held-out counts, aligned with `per_user`.

  Returns:
    dict with `mean`, `stderr` (population std / sqrt(n), as `np.std` in Liang's notebook),
    `n_users` (users averaged) and `n_skipped` (users without held-out items). `mean` and `stderr`
    are NaN when no user has a held-out item.
  """
  per_user = np.asarray(per_user, np.float64).reshape(-1)
  n_heldout = np.asarray(n_heldout).reshape(-1)
  if per_user.shape != n_heldout.shape:
    raise ValueError(f"per_user {per_user.shape} and n_heldout {n_heldout.shape} differ in shape")
  keep = n_heldout > 0
  vals = per_user[keep]
  n = int(vals.shape[0])
  if n == 0:
    mean = stderr = float("nan")
  else:
    mean = float(vals.mean())
    stderr = float(vals.std() / np.sqrt(n))
  return dict(mean=mean, stderr=stderr, n_users=n, n_skipped=int((~keep).sum()))


def paired_difference(before: np.ndarray, after: np.ndarray, z: float = 1.96) -> dict:
  """The paired per-user difference `after - before` of one metric (host-side numpy, float64).

  Args:
    before, after: `[n]` per-user values of the same users (e.g. the actor's and RaCT's test
      NDCG@100 over users with held-out items).
    z: the normal quantile of the interval (1.96: 95%).

  Returns:
    `n`, `mean`, `sd` (sample sd, ddof=1), `se` (sd / sqrt(n)), `ci_low`, `ci_high` (mean -/+
    z * se), `z`, `excludes_zero`, `n_better`, `n_worse`, `n_equal`; NaN where n is too small.
  """
  d = np.asarray(after, np.float64).reshape(-1) - np.asarray(before, np.float64).reshape(-1)
  n = int(d.size)
  mean = float(d.mean()) if n else float("nan")
  sd = float(d.std(ddof=1)) if n > 1 else float("nan")
  se = sd / float(np.sqrt(n)) if n > 1 else float("nan")
  lo, hi = mean - z * se, mean + z * se
  return {"n": n, "mean": mean, "sd": sd, "se": se, "ci_low": lo, "ci_high": hi, "z": z,
          "excludes_zero": bool(np.isfinite(se) and (lo > 0 or hi < 0)),
          "n_better": int((d > 0).sum()), "n_worse": int((d < 0).sum()),
          "n_equal": int((d == 0).sum())}


# ---- Pearson correlation (the critic's diagnostics; paper Figures 4 and 6). -----------------------


def _correlation(cov, var_a, var_b, sq_a, sq_b):
  """cov / sqrt(var_a var_b), or 0 when a variance is numerically zero (below 1e-10 of the mean
  square, so that float rounding of a constant input does not give a spurious +-1)."""
  ok = (var_a > 1e-10 * sq_a + 1e-30) & (var_b > 1e-10 * sq_b + 1e-30)
  return jnp.where(ok, cov / jnp.sqrt(jnp.where(ok, var_a * var_b, 1.0)), 0.0).astype(jnp.float32)


def pearson_r(a, b, mask=None, axis_name: str | None = None) -> jax.Array:
  """Pearson correlation of `a` and `b` over the valid rows (device-global with `axis_name`).

  Args:
    a, b: float `[N]` (device or host arrays).
    mask: optional 0/1 `[N]`; None means every row is valid.
    axis_name: the `shard_map` axis the rows are split over, or None.

  Returns:
    float32 scalar; 0 (not NaN) when either input has zero variance or fewer than two valid rows.
  """
  psum = (lambda x: x) if axis_name is None else (lambda x: jax.lax.psum(x, axis_name))
  a = jnp.asarray(a, jnp.float32).reshape(-1)
  b = jnp.asarray(b, jnp.float32).reshape(-1)
  w = jnp.ones_like(a) if mask is None else (jnp.asarray(mask).reshape(-1) > 0).astype(jnp.float32)
  a, b = jnp.where(w > 0, a, 0.0), jnp.where(w > 0, b, 0.0)
  n = jnp.maximum(psum(jnp.sum(w)), 1.0)
  da, db = w * (a - psum(jnp.sum(w * a)) / n), w * (b - psum(jnp.sum(w * b)) / n)
  cov, va, vb, sa2, sb2 = psum((jnp.sum(da * db), jnp.sum(da * da), jnp.sum(db * db),
                                jnp.sum(w * a * a), jnp.sum(w * b * b)))
  return _correlation(cov, va, vb, sa2, sb2)


def pearson_from_sums(n, sum_a, sum_b, sum_aa, sum_bb, sum_ab) -> float:
  """Pearson r from streamed sums (count, sums, sums of squares and of products), e.g. over the
  steps of an epoch; the moments in float64 on the host, then `pearson_r`'s zero-variance rule."""
  n = max(float(n), 1.0)
  mean_a, mean_b = sum_a / n, sum_b / n
  var_a, var_b = sum_aa - n * mean_a**2, sum_bb - n * mean_b**2
  cov = sum_ab - n * mean_a * mean_b
  return float(_correlation(cov, var_a, var_b, sum_aa, sum_bb))
