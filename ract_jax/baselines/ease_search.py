"""EASE's lambda chosen on validation with ONE factorisation for the whole grid.

`G = X^T X = V diag(s) V^T` (an eigendecomposition), so for any lambda
`P = (G + lam I)^{-1} = V diag(w) V^T` with `w = 1 / (s + lam)`, and the validation users' scores
`X B = X - (X P) / diag(P)` (column-wise) need only `X P = (X V) diag(w) V^T` and
`diag(P)_i = sum_k V_ik^2 w_k`. `X V` is computed once for the validation users, so a lambda costs
`2 H M^2` flops for H of them (one matmul, no M^3 solve).

Precision. The decomposition is float32 by default (LAPACK's divide and conquer on the host on the
CPU backend, about twice as fast as float64; `jnp.linalg.eigh` on an accelerator). Its scores'
error grows like eps * lambda_max(G) / lam, so a lambda's validation NDCG@100 can be off by a
little (measured on ml-1m-implicit against float64: at most 1.8e-4, at lam = 10; BUILD.md). So
the search's ranking is only trusted beyond `RECHECK_NDCG`: every lambda within it of the best is
re-validated with the closed form (`ease.fit_from_gram`, one Cholesky each), and the chosen
lambda is the best of those exact values. The returned B is always the closed form's.
`float64=True` (`config.baselines.ease_float64`) decomposes in float64 on the host instead.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ract_jax.actors import sparse_layer
from ract_jax.baselines import ease
from ract_jax.data.csr import CSR

# 16 log-spaced values from 1 to 1e5 (10^(k/3), 3 significant digits): a factor ~2.15 apart.
DEFAULT_LAMBDAS = tuple(float(f"{v:.3g}") for v in np.logspace(0.0, 5.0, 16))

# A lambda whose search NDCG@100 is within this of the best is re-validated exactly: 5x the largest
# float32-vs-float64 difference measured on ml-1m-implicit (1.8e-4; BUILD.md, "The EASE search").
RECHECK_NDCG = 1e-3

# Peak dense M x M float32 matrices (a float64 one counts 2) the search holds, by (backend, float64
# decomposition): max RSS above the baseline at M = 6,000 on the CPU (BUILD.md); `xv` adds H x M.
# The Gram matrix stays on the host for the closed-form solves at the end.
PEAK_MATRICES = {
    # Decomposing 4.1 (G, its copy becoming V, syevd's 2 M^2 workspace); G + the solve 4.6.
    ("cpu", False): {"host": 4.7},
    ("cpu", True): {"host": 5.1},  # G, its float64 copy, float64 eigenvectors (syevr).
    ("accelerator", False): {"host": 1.0, "device": 4.0},
    ("accelerator", True): {"host": 5.1, "device": 3.0},
}


def _eigh_host(gram: np.ndarray, dtype):
  """(s, Z) of the symmetric `gram` in `dtype` on the host (`gram` itself is not modified).

  float32: LAPACK's divide and conquer (`syevd`, 2.3 s at M = 3,690, BUILD.md); float64: MRRR
  (`syevr`, 4.55 s against 4.8 s for `syevd`, and no 2 M^2 float64 workspace).
  """
  import scipy.linalg  # pylint: disable=g-import-not-at-top
  a = np.array(gram, dtype, order="F", copy=True)
  return scipy.linalg.eigh(a, lower=True, overwrite_a=True, check_finite=False,
                           driver="evr" if dtype == np.float64 else "evd")


@functools.partial(jax.jit, donate_argnums=0)
def _eigh_device(g):
  return jnp.linalg.eigh(g, symmetrize_input=False)  # G is exactly symmetric (integer counts).


def eigen(gram: np.ndarray, float64: bool = False):
  """`G = V diag(s) V^T` (`gram` is not modified).

  Args:
    gram: float32 `[M, M]` from `ease.gram_matrix`.
    float64: decompose in float64 on the host (V then rounded to float32); otherwise float32, on
      the host on the CPU backend and on the JAX default device on an accelerator.

  Returns:
    `(v, s)`: device arrays, float32 `[M, M]` V (column k is the eigenvector of `s[k]`) and `[M]`
    eigenvalues clipped at 0 (G is positive semi-definite; rounding can make tiny ones negative).
  """
  if float64 or jax.default_backend() == "cpu":
    s, z = _eigh_host(gram, np.float64 if float64 else np.float32)
    v = jnp.asarray(z.astype(np.float32, order="C", copy=False))
    del z
    s = jnp.asarray(s, jnp.float32)
  else:
    s, v = _eigh_device(jnp.array(gram, jnp.float32, copy=True))  # A device copy to donate.
  return v, jnp.maximum(s, 0.0)


def users_times_v(fold_in: CSR, v: jax.Array) -> jax.Array:
  """`X V` for the held-out users' fold-in rows: sums of V's rows over their entries (nnz x M
  work), float32 `[n_users, M]`, on V's device."""
  rows = np.repeat(np.arange(fold_in.n_rows, dtype=np.int32), fold_in.row_lengths())
  return sparse_layer.sparse_rows_matmul(jnp.asarray(rows), jnp.asarray(fold_in.indices, jnp.int32),
                                         jnp.ones(fold_in.nnz, v.dtype), v, fold_in.n_rows)


@jax.jit
def _lambda_terms(v, s, lam):
  w = 1.0 / (s + lam)
  diag_p = jnp.sum(jnp.square(v) * w[None, :], axis=1)  # Positive terms: no cancellation.
  return w, 1.0 / diag_p


def lambda_params(xv, v, s, lam: float) -> dict:
  """The parameters of `lambda_scores` for one lambda (the same shapes for every lambda).

  Returns:
    `{"xv": [H, M] X V, "v": [M, M] V, "w": [M] 1 / (s + lam), "inv_diag": [M] 1 / diag(P)}`.
  """
  w, inv_diag = _lambda_terms(v, s, jnp.float32(lam))
  return {"xv": xv, "v": v, "w": w, "inv_diag": inv_diag}


def lambda_scores(params, entries, fold_in) -> jax.Array:
  """EASE scores `x B = x - (x P) / diag(P)` of the batch's users (an `evaluate.ScoreFn`): their
  rows of `X V` (`entries.users` index the held-out split; padding rows give garbage, unused)."""
  xv = params["xv"][jnp.maximum(entries.users, 0)] * params["w"]
  xp = jax.lax.dot_general(xv, params["v"], (((1,), (1,)), ((), ())),
                           precision=jax.lax.Precision.HIGHEST)  # (X V diag(w)) V^T
  return fold_in.astype(jnp.float32) - xp * params["inv_diag"]


def direct_scores(b, entries, fold_in) -> jax.Array:
  """`ease.scores(b, fold_in)` as an `evaluate.ScoreFn` (one function object: compiled once)."""
  del entries
  return ease.scores(b, fold_in)


def _check_lambdas(lambdas) -> tuple[float, ...]:
  lams = tuple(float(v) for v in lambdas)
  if not lams or not all(math.isfinite(v) and v > 0 for v in lams):
    raise ValueError(f"config.baselines.ease_lambdas={tuple(lambdas)}: give one or more finite "
                     "values > 0 (e.g. ract_jax.baselines.ease_search.DEFAULT_LAMBDAS).")
  return lams


def edge_warning(lams: tuple[float, ...], chosen: float) -> str | None:
  """The warning when the chosen lambda lies at an end of the grid (None inside it)."""
  lo, hi = min(lams), max(lams)
  if lo == hi:
    return (f"EASE: config.baselines.ease_lambdas has the single value {chosen:g}, so lambda was "
            f"not searched; give a log-spaced grid around it, e.g. ({chosen / 10:g}, ..., "
            f"{chosen * 10:g}).")
  if chosen not in (lo, hi):
    return None
  end, side, new = (("smallest", "below", lo / 100) if chosen == lo else
                    ("largest", "above", hi * 100))
  return (f"EASE: the chosen lambda {chosen:g} is the {end} value of config.baselines.ease_lambdas "
          f"({lo:g} .. {hi:g}): the best may lie {side} the grid. Widen it {side} {chosen:g}, e.g. "
          f"with log-spaced values out to {new:g}.")


def search(train: CSR, validation: CSR, lambdas: Sequence[float], validate: Callable, *,
           max_items: int | None, log: Callable[[str], None], float64: bool = False,
           recheck: float = RECHECK_NDCG, memory_bytes: float | None = None):
  """Chooses EASE's lambda on the validation users' NDCG@100 (see the module docstring).

  Args:
    train: training users' histories, `[n_users, M]` binary CSR.
    validation: the validation users' fold-in rows (`HeldOut.fold_in`), in the evaluator's order.
    lambdas: the grid (`config.baselines.ease_lambdas`), values > 0.
    validate: `validate(score_fn, params) -> summary` with key "ndcg@100" (production:
      `evaluate.summarize(evaluator.run(score_fn, params))`); called with `lambda_scores` for every
      lambda (one function object, the same shapes: one compile), then with `direct_scores` and
      the closed-form B of every lambda within `recheck` of the search's best.
    max_items: refuse when M exceeds it (`config.baselines.ease_max_items`; None: no cap).
    log: progress and warnings (a chosen lambda at an end of the grid is reported).
    float64: decompose in float64 on the host (`config.baselines.ease_float64`) instead of
      float32.
    recheck: the NDCG@100 margin below the search's best within which lambdas are re-validated
      with the closed form (0: only the best).
    memory_bytes: the memory limit for host and device (default: `ease.memory_limits()`).

  Returns:
    `({"lam": lam}, validation summary of the chosen B, B)`: the best closed-form NDCG@100 among
    the re-validated lambdas; exact ties keep the earliest lambda of `lambdas`.

  Raises:
    ValueError before anything is allocated when M exceeds `max_items` or the peak memory estimate
    exceeds the limit (naming `config.baselines.ease_max_items`); for a lambda not > 0; when no
    lambda gives a finite NDCG@100.
  """
  lams = _check_lambdas(lambdas)
  m, h = train.n_items, validation.n_rows
  ease.check_size(m, max_items)
  backend = "cpu" if jax.default_backend() == "cpu" else "accelerator"
  float64 = bool(float64)
  if not (math.isfinite(recheck) and recheck >= 0):
    raise ValueError(f"ease_search.search: recheck={recheck!r}; give a finite margin >= 0 (0: only "
                     "the search's best is solved with the closed form).")
  limits = (ease.memory_limits() if memory_bytes is None else
            {k: (float(memory_bytes), "memory_bytes") for k in ("host", "device")})
  peak = {where: n + h / m for where, n in PEAK_MATRICES[backend, float64].items()}
  ease.check_memory(m, peak, limits)

  t0 = time.perf_counter()
  gram = ease.gram_matrix(train)
  v, s = eigen(gram, float64=float64)
  xv = jax.block_until_ready(users_times_v(validation, v))
  where = "float64 on the host" if float64 else (
      "float32 on the host" if backend == "cpu" else "float32 on the device")
  log(f"ease  eigendecomposition of the {m} x {m} Gram matrix ({where}) and X V of the {h} "
      f"validation users: {time.perf_counter() - t0:.1f} s")
  found = []  # (index, search NDCG@100) of the lambdas with a finite value, in grid order.
  for i, lam in enumerate(lams):
    t0 = time.perf_counter()
    ndcg = float(validate(lambda_scores, lambda_params(xv, v, s, lam))["ndcg@100"])
    log(f"ease  {{'lam': {lam}}}  val ndcg@100 {ndcg:.4f}  ({time.perf_counter() - t0:.1f} s)")
    if math.isfinite(ndcg):
      found.append((i, ndcg))
    else:
      log(f"ease  lam={lam:g}: validation NDCG@100 is {ndcg}; this lambda is not considered.")
  del v, s, xv  # The closed-form solves need the memory.
  if not found:
    raise ValueError(f"EASE: no lambda of config.baselines.ease_lambdas={lams} gave a finite "
                     "validation NDCG@100.")
  top = max(ndcg for _, ndcg in found)
  contenders = [(i, ndcg) for i, ndcg in found if ndcg >= top - recheck]
  if len(contenders) > 1:
    log(f"ease  {len(contenders)} lambdas within {recheck:g} of the search's best "
        f"({', '.join(f'{lams[i]:g}' for i, _ in contenders)}): each re-validated with the "
        "closed form")
  exact, held = [], None  # (index, closed-form summary); (index, B) of the last solve.
  # The search's best is solved last: when the closed form agrees, its B is the one held.
  for i, ndcg in sorted(contenders, key=lambda c: c[1]):
    held = None  # One B at a time: the previous one is freed before the next solve.
    b = ease.fit_from_gram(gram, lams[i])
    val = validate(direct_scores, b)
    log(f"ease  lam {lams[i]:g}: B by Cholesky, val ndcg@100 {val['ndcg@100']:.4f} (search: "
        f"{ndcg:.4f})")
    exact.append((i, val))
    held = (i, b)
    del b
  best = max(exact, key=lambda e: (e[1]["ndcg@100"], -e[0]))  # Ties keep the earliest lambda.
  b = held[1] if held[0] == best[0] else ease.fit_from_gram(gram, lams[best[0]])
  lam = lams[best[0]]
  warning = edge_warning(lams, lam)
  if warning:
    log(warning)
  log(f"ease  chosen lam {lam:g} (val ndcg@100 {best[1]['ndcg@100']:.4f})")
  return {"lam": lam}, best[1], b
