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

What the public functions accept. Shapes, dtypes and cut-offs are checked when a function is called
or traced, from the shapes and dtypes alone, so those checks cost nothing in the compiled program;
a violation raises naming the function, the argument and the shapes.
  * `scores` and `heldout` are 2-D `[B, M]` arrays (or anything `jnp.asarray` takes: lists, numpy)
    of the same shape, with M >= 1; `scores` is floating; `heldout` is bool, integer or floating.
    One user is `[1, M]`, never `[M]`, and a `[1, M]` `heldout` is not broadcast over B users.
  * `heldout` holds 0 and 1 only (binary gains). A call outside `jax.jit` whose `heldout` is a
    concrete non-bool array checks that and raises ValueError naming the first other value (a 2,
    a -1, a NaN, ...); a bool array is binary by construction and is not read. Under `jax.jit` the
    values are tracers that cannot be inspected: there `heldout` is trusted and used as given (gain
    and count), which the evaluator and the critic's target guarantee by building it from a mask.
    Why not binarise (`heldout > 0`) or check inside the compiled program instead: either needs a
    compare over all of `[B, M]`, which XLA on CPU does not fold into the vectorised sum that
    counts n_heldout, so every call of the trainer and the evaluator (whose input is binary
    anyway) would pay at least that pass: `value_check_s` in `experiments/bench_metrics.py`, a
    sizeable fraction of NDCG@100's own time. Eagerly it is paid only by calls that hand over a
    concrete non-bool array, the ones that may hold anything.
  * Non-finite scores: NaN ranks as `-inf`, and a top-k slot whose score is `-inf` (or NaN) is
    never a hit, whatever `heldout` says there: it was not recommended (fold-in items are masked to
    -inf for exactly that reason). A row whose scores are all NaN or all `-inf` scores 0 (it still
    counts its held-out items, so `summarize` averages it in as 0). `+inf` is an ordinary, highest
    score. A row whose top k holds neither NaN nor -inf (at least k finite scores: every row of
    real data, where fold-in items are far fewer than M - k) is computed exactly as before these
    rules, bit for bit; the other rows are recomputed under the rules, equal to the old values up
    to float rounding where the old ones were right (no held-out item at -inf).

Tie-breaking: `jax.lax.top_k` puts the lower item index first among equal scores (documented in
its docstring and checked in the tests), i.e. the order of a stable descending argsort. Items at
`-inf` tie with each other, so they can enter the top k only when a row has fewer than k finite
scores, and they then come in index order, never as hits.

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


def _check_k(k, where: str = "k") -> int:
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
    raise TypeError(f"{where} must be a Python int (static), got {type(k).__name__}: {k!r}")
  if k < 1:
    raise ValueError(f"{where} must be >= 1, got {k}")
  return int(k)


def _check_ks(name: str, ks) -> tuple[int, ...]:
  if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
    raise TypeError(f"ranking_metrics: {name} must be a sequence of Python ints, got "
                    f"{type(ks).__name__}: {ks!r}; for one cut-off pass ({ks!r},)")
  return tuple(sorted({_check_k(k, f"ranking_metrics: each of {name}") for k in ks}))


def _as_array(x, fn: str, name: str) -> jax.Array:
  if isinstance(x, jax.Array):  # Device arrays and tracers pass as they are.
    return x
  try:
    return jnp.asarray(x)
  except (TypeError, ValueError) as e:
    raise TypeError(f"{fn}: {name} must be an array [B, M] (or a list / numpy array of one), got "
                    f"{type(x).__name__}, which jnp.asarray refuses: {e}") from None


def _check_inputs(fn: str, scores, heldout) -> tuple[jax.Array, jax.Array]:
  """`(scores, heldout)` as arrays after the module's shape and dtype rules (see the docstring)."""
  scores, heldout = _as_array(scores, fn, "scores"), _as_array(heldout, fn, "heldout")
  for name, x in (("scores", scores), ("heldout", heldout)):
    if x.ndim != 2:
      hint = f"; for one user pass {name}[None] (shape [1, M])" if x.ndim == 1 else ""
      raise ValueError(f"{fn}: {name} must be 2-D [B, M] (users x items), got shape "
                       f"{tuple(x.shape)}{hint}")
  s, h = tuple(scores.shape), tuple(heldout.shape)
  if s != h:
    fix = ("pass one row of heldout per row of scores" if s[0] != h[0] else
           "pass one column per item in both")
    raise ValueError(f"{fn}: heldout has shape {h} but scores has shape {s}; {fix}")
  if s[1] == 0:
    raise ValueError(f"{fn}: scores has shape {s}: no items to rank")
  if not jnp.issubdtype(scores.dtype, jnp.floating):
    raise TypeError(f"{fn}: scores must be floating (e.g. float32), got dtype {scores.dtype}; "
                    f"cast with scores.astype(jnp.float32)")
  if not (heldout.dtype == jnp.bool_ or jnp.issubdtype(heldout.dtype, jnp.integer) or
          jnp.issubdtype(heldout.dtype, jnp.floating)):
    raise TypeError(f"{fn}: heldout must be bool, integer or floating (0/1), got dtype "
                    f"{heldout.dtype}")
  return scores, heldout


def _ruled_hits(scores: jnp.ndarray, heldout: jnp.ndarray, k: int) -> jnp.ndarray:
  """The top-k relevance under the module's rules for any scores: NaN ranks as -inf, and a -inf slot
  is never a hit. Costs a pass over `[B, M]` and a `top_k` more than the ordinary path."""
  vals, idx = jax.lax.top_k(jnp.where(jnp.isnan(scores), -jnp.inf, scores), k)
  hits = jnp.take_along_axis(heldout, idx, axis=-1).astype(jnp.float32)
  return jnp.where(vals > -jnp.inf, hits, 0.0)


def _from_hits(hits, n, ndcg_ks, recall_ks) -> dict[str, jnp.ndarray]:
  out = {f"ndcg@{k}": _ndcg_from_hits(hits, n, k) for k in ndcg_ks}
  out.update({f"recall@{k}": _recall_from_hits(hits, n, k) for k in recall_ks})
  return out


@functools.partial(jax.jit, static_argnames=("ndcg_ks", "recall_ks"))
def _per_user(scores, heldout, ndcg_ks, recall_ks):
  """All metrics from one `top_k` at the largest cut-off; `ndcg_ks` / `recall_ks` sorted tuples."""
  k = min(max(ndcg_ks + recall_ks), scores.shape[-1])
  vals, idx = jax.lax.top_k(scores, k)
  hits = jnp.take_along_axis(heldout, idx, axis=-1).astype(jnp.float32)
  n = jnp.sum(heldout.astype(jnp.float32), axis=-1)
  out = _from_hits(hits, n, ndcg_ks, recall_ks)
  # Exact unless a row's top k holds a NaN (top_k ranks NaN first, so any NaN in the row shows
  # there) or a -inf. Only such rows take the rules, computed under `cond` only when there are
  # some: the program and the numbers of every other row stay as they were (tested bit for bit).
  odd = jnp.any(jnp.isnan(vals) | (vals == -jnp.inf), axis=-1)
  ruled = jax.lax.cond(jnp.any(odd),
                       lambda: _from_hits(_ruled_hits(scores, heldout, k), n, ndcg_ks, recall_ks),
                       lambda: jax.tree.map(jnp.zeros_like, out))
  out = {name: jnp.where(odd, ruled[name], value) for name, value in out.items()}
  out["n_heldout"] = n.astype(jnp.int32)
  return out


@jax.jit
def _any_not_binary(heldout):
  return jnp.any((heldout != 0) & (heldout != 1))


def _check_binary(fn: str, heldout: jax.Array) -> None:
  """Outside jit, raises if `heldout` holds a value other than 0 and 1 (a bool array cannot)."""
  if heldout.dtype == jnp.bool_ or isinstance(heldout, jax.core.Tracer):
    return
  if bool(_any_not_binary(heldout)):
    values = np.asarray(heldout)
    rows, cols = np.nonzero((values != 0) & (values != 1))
    raise ValueError(
        f"{fn}: heldout must hold only 0 and 1 (binary relevance), but {rows.size} of its entries "
        f"do not, the first heldout[{rows[0]}, {cols[0]}] = {values[rows[0], cols[0]].item()!r}; "
        f"pass (heldout > 0) or a bool array")


def ndcg_at_k(scores: jnp.ndarray, heldout: jnp.ndarray, k: int) -> jnp.ndarray:
  """Per-user NDCG@k with binary relevance.

  Jitted with `k` static; also usable inside another `jax.jit` (pass `k` as a Python int).
  Inputs follow the module's rules: shapes and dtypes checked, `heldout` 0/1 (checked outside jit,
  trusted under it), NaN ranks as -inf and a -inf slot is never a hit.

  Args:
    scores: float `[B, M]`; fold-in items already set to `-inf` by the caller.
    heldout: 0/1 (bool, int or float) `[B, M]`, same shape; the relevant items (0 on fold-in).
    k: cut-off, a Python int >= 1; values above M are clipped to M.

  Returns:
    float32 `[B]`; 0 for users without held-out items.

  Raises:
    ValueError / TypeError: shapes, dtypes, `heldout` values (outside jit) or `k` outside the
      module's rules; the message names the function, the argument and what to pass instead.
  """
  scores, heldout = _check_inputs("ndcg_at_k", scores, heldout)
  k = _check_k(k, "ndcg_at_k: k")
  out = _per_user(scores, heldout, ndcg_ks=(k,), recall_ks=())[f"ndcg@{k}"]
  _check_binary("ndcg_at_k", heldout)  # After the dispatch, so that both can run at once.
  return out


def recall_at_k(scores: jnp.ndarray, heldout: jnp.ndarray, k: int) -> jnp.ndarray:
  """Per-user Recall@k = hits in the top k / `min(k, n_heldout)` (Liang / RaCT definition).

  Same input rules and jit behaviour as `ndcg_at_k`.

  Args:
    scores: float `[B, M]`; fold-in items already set to `-inf` by the caller.
    heldout: 0/1 (bool, int or float) `[B, M]`, same shape.
    k: cut-off, a Python int >= 1; values above M are clipped to M.

  Returns:
    float32 `[B]`; 0 for users without held-out items.

  Raises:
    ValueError / TypeError: shapes, dtypes, `heldout` values (outside jit) or `k` outside the
      module's rules; the message names the function, the argument and what to pass instead.
  """
  scores, heldout = _check_inputs("recall_at_k", scores, heldout)
  k = _check_k(k, "recall_at_k: k")
  out = _per_user(scores, heldout, ndcg_ks=(), recall_ks=(k,))[f"recall@{k}"]
  _check_binary("recall_at_k", heldout)
  return out


def n_heldout(heldout: jnp.ndarray) -> jnp.ndarray:
  """Number of held-out items per user, int32 `[B]`, from a 0/1 `[B, M]` matrix."""
  return jnp.sum(heldout.astype(jnp.int32), axis=-1)


def metric_names(ndcg_ks: Iterable[int] = (100,), recall_ks: Iterable[int] = (20, 50)) -> list[str]:
  """The metric keys `ranking_metrics` returns (without 'n_heldout'), in its order."""
  return ([f"ndcg@{k}" for k in sorted(set(ndcg_ks))] +
          [f"recall@{k}" for k in sorted(set(recall_ks))])


def ranking_metrics(scores: jnp.ndarray, heldout: jnp.ndarray, ndcg_ks: Sequence[int] = (100,),
                    recall_ks: Sequence[int] = (20, 50)) -> dict[str, jnp.ndarray]:
  """All cut-offs from a single `top_k` at the largest k (what evaluation uses).

  Jitted with the cut-offs static; also usable inside another `jax.jit`. Same input rules as
  `ndcg_at_k`.

  Args:
    scores: float `[B, M]`; fold-in items already set to `-inf` by the caller.
    heldout: 0/1 (bool, int or float) `[B, M]`, same shape.
    ndcg_ks: NDCG cut-offs (a sequence of Python ints); duplicates are dropped.
    recall_ks: Recall cut-offs (a sequence of Python ints); duplicates are dropped.

  Returns:
    dict with float32 `[B]` entries `'ndcg@k'` and `'recall@k'` (keys as in `metric_names`), and
    `'n_heldout'`, int32 `[B]` (the count of `heldout > 0`; pass it to `summarize`). Values equal
    `ndcg_at_k`/`recall_at_k`.

  Raises:
    ValueError / TypeError: shapes, dtypes, `heldout` values (outside jit) or cut-offs outside
      the module's rules; the message names the function, the argument and what to pass instead.
  """
  scores, heldout = _check_inputs("ranking_metrics", scores, heldout)
  ndcg_ks = _check_ks("ndcg_ks", ndcg_ks)
  recall_ks = _check_ks("recall_ks", recall_ks)
  if not ndcg_ks and not recall_ks:
    raise ValueError("ranking_metrics needs at least one cut-off in ndcg_ks or recall_ks")
  out = _per_user(scores, heldout, ndcg_ks=ndcg_ks, recall_ks=recall_ks)
  _check_binary("ranking_metrics", heldout)
  return out



def summarize(per_user: np.ndarray, n_heldout: np.ndarray, empty: str = "skip") -> dict:
  """Mean and standard error over users with at least one held-out item (host-side numpy).

  Users without held-out items are skipped (Liang's mean would be NaN; RaCT's would count them as
  0, so RaCT's reported mean is lower by the fraction skipped). RaCT's test loop also drops the
  last partial batch of 500 users (`drop_remainder=True`); this averages over all users given.

  Args:
    per_user: 1-D `[N]` per-user metric values (e.g. concatenated `ranking_metrics` outputs).
    n_heldout: 1-D `[N]` held-out counts, aligned with `per_user`.
    empty: 'skip' (the above) or 'zero': users without held-out items count as 0 in the mean, as
      in the authors' code (`config.eval.empty_users`).

  Returns:
    dict with `mean`, `stderr` (population std / sqrt(n), as `np.std` in Liang's notebook),
    `n_users` (users averaged) and `n_skipped` (users without held-out items). `mean` and `stderr`
    are NaN when no user has a held-out item.

  Raises:
    ValueError: `per_user` and `n_heldout` are not 1-D arrays of one length (message names both).
  """
  per_user = np.asarray(per_user, np.float64)
  n_heldout = np.asarray(n_heldout)
  if per_user.ndim != 1 or n_heldout.ndim != 1 or per_user.shape != n_heldout.shape:
    raise ValueError(f"summarize: per_user has shape {per_user.shape} and n_heldout has shape "
                     f"{n_heldout.shape}; both must be 1-D [N], one entry per user, aligned")
  if empty not in ("skip", "zero"):
    raise ValueError(f"summarize: empty={empty!r}; expected 'skip' or 'zero' "
                     "(config.eval.empty_users)")
  keep = n_heldout > 0
  vals = per_user[keep] if empty == "skip" else np.where(keep, per_user, 0.0)
  n = int(vals.shape[0])
  if n == 0:
    mean = stderr = float("nan")
  else:
    mean = float(vals.mean())
    stderr = float(vals.std() / np.sqrt(n))
  return dict(mean=mean, stderr=stderr, n_users=n,
              n_skipped=int((~keep).sum()) if empty == "skip" else 0)


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
