"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

Closed form: `G = X^T X`, `P = (G + lam I)^{-1}`, `B = I - P diag(1/diag(P))`, i.e.
`B_ij = -P_ij / P_jj` for i != j and `B_jj = 0`. Column j of B is the ridge regression of item j on
all other items (the zero-diagonal constraint), see `tests/test_baselines.py`. Scores: `x_u B`.

- `fit(train, lam)`: one Cholesky inverse of `G + lam I` (float32 on the JAX device, or float64 on
  the host), an M^3 solve per lambda.
- `search(train, lambdas, validate, ...)`: the lambda search with ONE factorisation for the whole
  grid, `G = V diag(s) V^T`. For a lambda, `P = V diag(1/(s + lam)) V^T` is never formed: the
  validation scores are `X B = X - (X P) / diag(P)` column-wise, with `X P = ((X V) diag(1/(s +
  lam))) V^T` and `diag(P)_i = sum_j V_ij^2 / (s_j + lam)`. `X V` sums V's rows over the fold-in
  entries (nnz x M), so a lambda costs 2 H M^2 flops for H validation users, as much as scoring
  them with an explicit B, instead of an M^3 solve plus that. The chosen lambda's B is `fit`'s.

Precision of `search` (`experiments/bench_ease.py --data ml1m --precision`; ml-1m-implicit, M =
3,690, lambda_max(G) = 2.1e5): the 600 validation users' scores on non-fold-in items against float64
Cholesky's, max |difference| / max |score|, over the 16 `DEFAULT_LAMBDAS`. Float64
eigendecomposition on the host (scipy's MRRR, V then rounded to float32): 1.3e-6 .. 2.2e-6,
validation NDCG@100 within 4e-6. Float32 `jnp.linalg.eigh` (LAPACK syevd on the CPU): 1.8e-2 at lam
= 1, falling like eps * lambda_max / lam to 3e-6 at 1e5, NDCG@100 within 2.1e-4. Float32 Cholesky
(`fit`): 8.7e-7 .. 5.7e-5, NDCG@100 within 6e-6. So the CPU backend decomposes in float64 on the
host; an accelerator in float32 on the device (fast there), where the error can only swap lambdas
whose NDCG@100 differ by ~2e-4, far below the validation standard error (~0.01 with 600 users); the
returned B is `fit`'s either way.

Time (`experiments/bench_ease.py`, one run each, on the 2-core CPU shared with other jobs, load
average 17-25): ml-1m-implicit, OPENBLAS_NUM_THREADS=1: the eigendecomposition 41 s, a lambda's
validation 4-5 s, the 16-lambda search 141 s; the old way, `fit` + validation, 13.8 s a lambda (69 s
for 5). With OpenBLAS's default 2 threads: 169 s, 5-6 s, 288 s against 21.8 s a lambda: the
eigendecomposition's tridiagonal reduction is memory-bound work that OpenBLAS threads slow 4x on an
oversubscribed machine (set OPENBLAS_NUM_THREADS=1 there). 1 thread: synthetic, M = 8,000, 25,696
users, 2,000 validation users: 323 s, 15 s, 721 s against 67.8 s a lambda (339 s for 5);
ml-latest-small (M = 5,697 but 503 users, so G has rank 503): 167-248 s, 12 s, 529 s against 27.3 s
(137 s for 5). The decomposition costs 4-6 Cholesky solves on the full-rank Grams here (11-17 on
ml-latest-small's), so the search beats a Cholesky per lambda only on grids longer than that; a
lambda then costs what scoring the validation users once does.

Memory of `search`: `SEARCH_PEAK_MATRICES` dense M x M float32 matrices at peak, i.e. `n x 4 bytes x
M^2`. CPU backend: the float64 Gram, decomposed in place, and the float64 eigenvectors = 4 (the
divide-and-conquer driver would add 2 M^2 of workspace; MRRR needs O(M)). Measured max RSS above
the baseline (`/usr/bin/time -v`) at M = 3,500 / 5,000 / 7,000: 4.9 / 4.3 / 4.1 M^2 float32, 3.9 per
M^2 from 5,000 to 7,000 (the rest is a fixed ~0.1-0.2 GB); float32 `jnp.linalg.eigh` on the CPU
4.2 at 7,000, `fit` 3.2. Accelerator (not measured on one): on the device G, V and the eigensolver's
workspace (2 M^2 for LAPACK's syevd; cuSOLVER's assumed alike) = 4, then `fit`'s ~3; on the host the
float32 Gram (1). `check_memory` compares this with `memory_limits()` before anything is allocated:

  ======================================  ====  ===========  =================================
  memory available                         n    max items M  datasets
  ======================================  ====  ===========  =================================
  24 GB host, CPU backend                  4     38,729      ML-20M (20,108) fits; MSD (41,140,
                                                              27.1 GB) is refused
  80 GB GPU: JAX's default 75% pool        4     61,237      MSD fits
  141 GB GPU: 75% pool (all of it)         4     81,298 (93,874)
  ======================================  ====  ===========  =================================
"""

from __future__ import annotations

import functools
import math
import os
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ract_jax import sparse_layer
from ract_jax.data.csr import CSR

_BYTES_F32 = 4


def max_items_in_memory(bytes_available: float, n_matrices: float = 3) -> int:
  """Largest item count M with `n_matrices * 4 * M**2 <= bytes_available`.

  Args:
    bytes_available: memory the computation may use, in bytes.
    n_matrices: dense M x M float32 matrices live at peak (`fit`: about 3 on a GPU and 4 on the CPU
      backend; `search`: `SEARCH_PEAK_MATRICES`).

  Returns:
    The largest M (int).
  """
  return int(math.isqrt(int(bytes_available // (n_matrices * _BYTES_F32))))


def check_size(n_items: int, max_items: int | None) -> None:
  """Raises ValueError if `n_items` exceeds `max_items` (None: no cap)."""
  if max_items is not None and n_items > max_items:
    need_gb = 3 * _BYTES_F32 * n_items**2 / 1e9
    raise ValueError(
        f"EASE needs dense {n_items} x {n_items} matrices (~{need_gb:.1f} GB at peak, float32) but "
        f"the cap is {max_items} items; raise config.baselines.ease_max_items (see "
        f"ract_jax.baselines.ease.max_items_in_memory) or drop 'ease' from config.baselines.names.")


def gram_matrix(train: CSR, max_items: int | None = None, block_items: int = 1024) -> np.ndarray:
  """Dense `X^T X` (item co-occurrence counts) from the sparse training matrix, on the host.

  Computed with scipy sparse products one block of `block_items` columns at a time, so that the
  sparse intermediate never holds more than `M * block_items` entries (the full sparse product of
  a dense-ish co-occurrence matrix would take ~3x the memory of the dense result).

  Args:
    train: training users' histories, `[n_users, M]` binary CSR.
    max_items: optional cap on M (ValueError above it).
    block_items: columns per sparse product.

  Returns:
    float32 `[M, M]`; exact integer counts (float32 is exact below 2**24 users).
  """
  check_size(train.n_items, max_items)
  if train.n_rows >= 2**24:
    raise ValueError(f"{train.n_rows} users: float32 co-occurrence counts would not be exact")
  m = train.n_items
  x = train.to_scipy()
  xt = x.T.tocsr()
  xc = x.tocsc()
  g = np.empty((m, m), np.float32)
  for j0 in range(0, m, block_items):
    j1 = min(m, j0 + block_items)
    g[:, j0:j1] = (xt @ xc[:, j0:j1]).toarray()
  return g


# ---- One lambda: Cholesky inverse. ---------------------------------------------------------------
#
# Numerics. `G + lam I` is symmetric positive definite with every eigenvalue >= lam, so its
# condition number is at most (lambda_max(G) + lam) / lam; Cholesky is backward stable without
# pivoting, so float32 leaves relative errors around eps * condition at most (measured: the module
# docstring). Memory: about three dense M x M float32 matrices on a GPU (G or its factor, the
# identity right-hand side, P becoming B), up to four on the CPU backend (max RSS above the
# baseline: 3.6 M^2 float32 at M = 6,000 in an earlier measurement, 3.2 at M = 7,000 here).


@functools.partial(jax.jit, donate_argnums=0)
def _solve_f32(g, lam):
  m = g.shape[0]
  diag = jnp.arange(m)
  g = g.at[diag, diag].add(lam)
  chol = jax.scipy.linalg.cho_factor(g, lower=True)
  p = jax.scipy.linalg.cho_solve(chol, jnp.eye(m, dtype=g.dtype))
  b = p * (-1.0 / jnp.diagonal(p))[None, :]
  return b.at[diag, diag].set(0.0)


def _solve_f64_host(g: np.ndarray, lam: float) -> np.ndarray:
  import scipy.linalg  # pylint: disable=g-import-not-at-top
  g = np.array(g, np.float64)
  g[np.diag_indices_from(g)] += lam
  p = scipy.linalg.cho_solve(scipy.linalg.cho_factor(g, lower=True), np.eye(g.shape[0]))
  b = -p / np.diag(p)[None, :]
  np.fill_diagonal(b, 0.0)
  return b.astype(np.float32)


def fit_from_gram(gram, lam: float, float64: bool = False):
  """EASE weights from a precomputed `X^T X` (reuse it across a sweep over lam).

  Args:
    gram: float32 `[M, M]` from `gram_matrix` (host array or device array; not modified).
    lam: L2 regularisation (> 0; float32 Cholesky is fine for lam >= 1).
    float64: solve on the host in float64 with scipy instead of float32 on the JAX device.

  Returns:
    float32 `[M, M]` B with zero diagonal: a jax array (default) or numpy array (`float64=True`).
  """
  if not lam > 0:
    raise ValueError(f"EASE needs lam > 0, got {lam}")
  if float64:
    return _solve_f64_host(np.asarray(gram), float(lam))
  # Copy onto the device so that donating it does not delete the caller's array.
  g = jnp.array(gram, dtype=jnp.float32, copy=True)
  return _solve_f32(g, jnp.float32(lam))


def fit(train: CSR, lam: float, max_items: int | None = None, float64: bool = False):
  """Fits EASE on the training users for one lambda.

  Args:
    train: training users' histories, `[n_users, M]` binary CSR.
    lam: L2 regularisation (Steck's lambda; e.g. a few hundred for ML-20M).
    max_items: refuse (ValueError) when M exceeds this; pass `config.baselines.ease_max_items`.
    float64: see `fit_from_gram`.

  Returns:
    float32 `[M, M]` item-item weights B (`B_ij = -P_ij / P_jj`, zero diagonal).
  """
  check_size(train.n_items, max_items)
  g = gram_matrix(train)
  if float64:
    return fit_from_gram(g, lam, float64=True)
  g_dev = jnp.asarray(g)
  del g  # Drop the host copy before the solve allocates its work matrices.
  return _solve_f32(g_dev, jnp.float32(lam))


@jax.jit
def scores(b, x_dense) -> jnp.ndarray:
  """EASE scores `x @ B` for a batch.

  Args:
    b: float32 `[M, M]` from `fit` or `search`.
    x_dense: 0/1 `[B, M]` fold-in batch (the caller masks fold-in items to -inf afterwards).

  Returns:
    float32 `[B, M]`.
  """
  # HIGHEST: the default float32 matmul precision on GPUs/TPUs may round B to TF32/bf16.
  return jnp.dot(x_dense.astype(jnp.float32), b, precision=jax.lax.Precision.HIGHEST)


# ---- The lambda search: one eigendecomposition for the whole grid. -------------------------------

# 16 log-spaced values from 1 to 1e5 (10^(k/3), 3 significant digits): a factor ~2.15 apart.
DEFAULT_LAMBDAS = tuple(float(f"{v:.3g}") for v in np.logspace(0.0, 5.0, 16))

# Peak dense M x M float32 matrices (4 M^2 bytes each; a float64 one counts 2) that `search` holds,
# by (backend, float64 eigendecomposition); the module docstring gives the measurements. "host": the
# CPU backend's memory (host and device share the RAM there) or an accelerator's host.
SEARCH_PEAK_MATRICES = {
    ("cpu", True): {"host": 4.0},  # float64 Gram decomposed in place + float64 eigenvectors
    ("cpu", False): {"host": 4.0},  # jnp.linalg.eigh: G, V, syevd's 2 M^2 workspace
    ("accelerator", False): {"host": 1.0, "device": 4.0},  # as above on the device; `fit` 3
    ("accelerator", True): {"host": 4.0, "device": 3.0},  # host as on the CPU; V, then `fit`
}


def _eigh_host(a: np.ndarray):
  """(s, Z) of the symmetric Fortran-ordered `a` with scipy's MRRR driver (?syevr), in place."""
  import scipy.linalg  # pylint: disable=g-import-not-at-top
  # MRRR needs O(M) workspace (the divide-and-conquer driver wants 2 M^2 more); a is destroyed.
  return scipy.linalg.eigh(a, lower=True, overwrite_a=True, check_finite=False, driver="evr")


@functools.partial(jax.jit, donate_argnums=0)
def _eigh_device(g):
  return jnp.linalg.eigh(g, symmetrize_input=False)  # G is exactly symmetric (integer counts).


def eigen(gram: np.ndarray, float64: bool):
  """Eigendecomposition `G = V diag(s) V^T` for `search`, consuming `gram`.

  Args:
    gram: float32 `[M, M]` from `gram_matrix`; overwritten (pass the only reference).
    float64: decompose in float64 on the host (scipy's MRRR driver, in place; V is then rounded to
      float32) instead of in float32 on the JAX default device (`jnp.linalg.eigh`).

  Returns:
    `(v, s)`: device arrays, float32 `[M, M]` V (column k is the eigenvector of `s[k]`) and float32
    `[M]` eigenvalues clipped at 0 (G is positive semi-definite; rounding can make the smallest ones
    slightly negative).
  """
  if float64:
    a = np.asfortranarray(gram, np.float64)
    del gram  # The caller passed the only reference: the float32 copy goes now.
    s, z = _eigh_host(a)
    del a
    v = z.astype(np.float32, order="C")  # z is Fortran-ordered: one pass rounds and reorders.
    del z
    s, v = jnp.asarray(s, jnp.float32), jnp.asarray(v)
  else:
    g = jnp.asarray(gram)
    del gram
    s, v = _eigh_device(g)
  return v, jnp.maximum(s, 0.0)


@jax.jit
def _lambda_terms(v, s, lam):
  w = 1.0 / (s + lam)
  # diag(P)_i = sum_k V_ik^2 w_k: positive terms, so float32 loses nothing to cancellation here.
  diag_p = jnp.sum(jnp.square(v) * w[None, :], axis=1)
  return w, 1.0 / diag_p


def eigen_params(v, s, lam: float) -> dict:
  """The parameters of `eigen_scores` for one lambda (same shapes for every lambda).

  Args:
    v, s: from `eigen`.
    lam: L2 regularisation (> 0).

  Returns:
    `{"v": [M, M] V, "w": [M] 1 / (s + lam), "inv_diag": [M] 1 / diag(P)}`, float32.
  """
  w, inv_diag = _lambda_terms(v, s, jnp.float32(lam))
  return {"v": v, "w": w, "inv_diag": inv_diag}


def _fold_in_times(v, entries, n_rows: int):
  """`X V` from the batch's entries: sums of V's rows (`sparse_layer`), nnz M work, not B M^2."""
  # The dense fold-in has a 1 per (row, item) however often the entry repeats: keep the first.
  j = jnp.arange(entries.item.shape[0], dtype=jnp.int32)
  first = jnp.full((n_rows, v.shape[0]), j.shape[0], jnp.int32).at[entries.seg, entries.item].min(j)
  once = entries.valid & (first[entries.seg, entries.item] == j)
  return sparse_layer.sparse_rows_matmul(entries.seg, entries.item, once.astype(v.dtype), v, n_rows)


def eigen_scores(params, entries, fold_in) -> jnp.ndarray:
  """EASE scores `x B = x - (x P) / diag(P)` from the eigendecomposition (an `evaluate.ScoreFn`).

  Args:
    params: from `eigen_params`.
    entries: the batch's fold-in entries (`batches.Entries`, as the evaluator passes them).
    fold_in: 0/1 `[B, M]` fold-in batch, the same rows.

  Returns:
    float32 `[B, M]`, equal to `scores(B, fold_in)` up to float32 rounding.
  """
  x = fold_in.astype(jnp.float32)
  xv = _fold_in_times(params["v"], entries, x.shape[0])  # X V
  xp = jax.lax.dot_general(xv * params["w"], params["v"], (((1,), (1,)), ((), ())),
                           precision=jax.lax.Precision.HIGHEST)  # X P = (X V diag(w)) V^T
  return x - xp * params["inv_diag"]


def _host_memory() -> tuple[float, str]:
  """Bytes the host can still give this process, and where the figure comes from."""
  total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  try:
    with open("/proc/meminfo") as f:
      fields = dict(line.split(":", 1) for line in f)
    available = float(fields["MemAvailable"].split()[0]) * 1024
    return available, f"MemAvailable of /proc/meminfo, of {total / 1e9:.1f} GB physical"
  except (OSError, KeyError, ValueError):
    return float(total), "physical memory (no /proc/meminfo)"


def memory_limits() -> dict[str, tuple[float, str]]:
  """Memory `search` may use: `{"host": (bytes, source)}` and, on an accelerator, `"device"`.

  The host figure is Linux's MemAvailable (physical memory where that is missing); the device's is
  `bytes_limit - bytes_in_use` of `jax.devices()[0].memory_stats()` when the backend reports it (on
  a GPU that limit is the pool JAX preallocated, by default 75% of the card).
  """
  limits = {"host": _host_memory()}
  if jax.default_backend() != "cpu":
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
      free = float(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
      limits["device"] = (free, f"bytes_limit - bytes_in_use of {jax.devices()[0]}")
  return limits


def check_memory(n_items: int, peak: dict[str, float],
                 limits: dict[str, tuple[float, str]]) -> None:
  """Raises ValueError, naming `config.baselines.ease_max_items`, if `search` would not fit.

  Args:
    n_items: M.
    peak: `{where: dense M x M float32 matrices at peak}` (a `SEARCH_PEAK_MATRICES` entry).
    limits: `{where: (bytes available, source)}` from `memory_limits` (a place missing there is
      not checked).
  """
  for where, n in peak.items():
    if where not in limits:
      continue
    need = n * _BYTES_F32 * n_items**2
    limit, source = limits[where]
    if need > limit:
      raise ValueError(
          f"EASE refused before allocating: its lambda search on M = {n_items:,} items holds "
          f"~{n:g} dense M x M float32 matrices at peak in {where} memory ({n:g} x 4 bytes x M^2 = "
          f"{need / 1e9:.1f} GB) but the limit there is {limit / 1e9:.1f} GB ({source}); at most "
          f"~{max_items_in_memory(limit, n):,} items fit. Set config.baselines.ease_max_items "
          f"below {n_items} to skip EASE on this data, or run it where more memory is free.")


def _check_lambdas(lambdas) -> tuple[float, ...]:
  lams = tuple(float(v) for v in lambdas)
  if not lams or not all(math.isfinite(v) and v > 0 for v in lams):
    raise ValueError(f"config.baselines.ease_lambdas={tuple(lambdas)}: give one or more finite "
                     f"values > 0 (e.g. ract_jax.baselines.ease.DEFAULT_LAMBDAS).")
  return lams


def _edge_warning(lams: tuple[float, ...], chosen: float) -> str | None:
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


def direct_scores(b, entries, fold_in) -> jnp.ndarray:
  """`scores(b, fold_in)` as an `evaluate.ScoreFn` (one function object: compiled once)."""
  del entries
  return scores(b, fold_in)


def search(train: CSR, lambdas: Sequence[float], validate: Callable, *, max_items: int | None,
           log: Callable[[str], None], float64: bool | None = None,
           memory_bytes: float | None = None):
  """Chooses EASE's lambda on validation with one eigendecomposition of `G = X^T X`.

  The memory check comes first, then the Gram matrix and its eigendecomposition (`eigen`), one
  `validate` call per lambda (`eigen_scores`: 2 H M^2 flops each), and `fit` at the chosen lambda
  (precision, memory and time: the module docstring). A chosen lambda at either end of the grid
  (its smallest or largest value) is reported through `log`, naming `config.baselines.ease_lambdas`.

  Args:
    train: training users' histories, `[n_users, M]` binary CSR.
    lambdas: the grid (`config.baselines.ease_lambdas`; e.g. `DEFAULT_LAMBDAS`), values > 0.
    validate: `validate(score_fn, params) -> summary dict` with key "ndcg@100" (production:
      `evaluate.summarize(val_evaluator.run(score_fn, params))`). It is called with `eigen_scores`
      and `eigen_params(...)` for every lambda (one function object, the same shapes: one compile),
      then once with `direct_scores` and the chosen lambda's B.
    max_items: refuse (ValueError) when M exceeds this (`config.baselines.ease_max_items`; None: no
      cap).
    log: callable(str) for progress and warnings.
    float64: eigendecomposition in float64 on the host instead of float32 on the JAX device
      (default: float64 on the CPU backend, float32 on an accelerator).
    memory_bytes: the memory limit in bytes, for host and device (default: `memory_limits()`).

  Returns:
    `(best_hp, best_val_summary, params)`: `{"lam": float}`; `validate`'s summary of params; params
    is the chosen lambda's float32 `[M, M]` B, `fit(train, lam)` (for `scores` / `direct_scores`).
    On exact NDCG@100 ties the earliest lambda in `lambdas` wins.

  Raises:
    ValueError, before anything is allocated, if M exceeds `max_items` or the estimated peak memory
    exceeds the limit (the message names `config.baselines.ease_max_items`), or if a lambda is not
    > 0, or if no lambda gives a finite NDCG@100.
  """
  lams = _check_lambdas(lambdas)
  m = train.n_items
  check_size(m, max_items)
  backend = "cpu" if jax.default_backend() == "cpu" else "accelerator"
  float64 = backend == "cpu" if float64 is None else bool(float64)
  limits = memory_limits() if memory_bytes is None else {k: (float(memory_bytes), "memory_bytes")
                                                         for k in ("host", "device")}
  check_memory(m, SEARCH_PEAK_MATRICES[backend, float64], limits)

  t0 = time.perf_counter()
  v, s = eigen(gram_matrix(train), float64=float64)
  jax.block_until_ready(v)
  log(f"ease  eigendecomposition of the {m} x {m} Gram matrix, "
      f"{'float64 on the host' if float64 else 'float32 on the device'}: "
      f"{time.perf_counter() - t0:.1f} s")
  best = None  # (index, ndcg)
  for i, lam in enumerate(lams):
    t0 = time.perf_counter()
    ndcg = float(validate(eigen_scores, eigen_params(v, s, lam))["ndcg@100"])
    log(f"ease  {{'lam': {lam}}}  val ndcg@100 {ndcg:.4f}  ({time.perf_counter() - t0:.1f} s)")
    if not math.isfinite(ndcg):
      log(f"ease  lam={lam:g}: validation NDCG@100 is {ndcg}; this lambda is not considered.")
    elif best is None or ndcg > best[1]:  # Strictly better: ties keep the earliest lambda.
      best = (i, ndcg)
  del v, s  # The final solve needs the memory.
  if best is None:
    raise ValueError(f"EASE: no lambda of config.baselines.ease_lambdas={lams} gave a finite "
                     f"validation NDCG@100.")
  lam = lams[best[0]]
  warning = _edge_warning(lams, lam)
  if warning:
    log(warning)
  b = fit(train, lam)
  val = validate(direct_scores, b)
  log(f"ease  chosen lam {lam:g}: B by Cholesky, val ndcg@100 {val['ndcg@100']:.4f} (search: "
      f"{best[1]:.4f})")
  return {"lam": lam}, val, b
