"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

Closed form: `G = X^T X`, `P = (G + lam I)^{-1}`, `B = I - P diag(1/diag(P))`, i.e.
`B_ij = -P_ij / P_jj` for i != j and `B_jj = 0`. Column j of B is the ridge regression of item j on
all other items (the zero-diagonal constraint), see `tests/test_baselines.py`. Scores: `x_u B`.
`fit(train, lam)` is one Cholesky inverse of `G + lam I` (float32 on the JAX device, or float64 on
the host); the search over lambda with one eigendecomposition is `ease_search.py`. Memory: the
dense M x M matrices each holds at peak (`max_items_in_memory`, `check_memory`; BUILD.md has the
measured counts and the item limits they give).
"""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

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


# ---- Memory: refuse before allocating. ---------------------------------------------------------


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
    peak: `{where: dense M x M float32 matrices at peak}` (e.g. an `ease_search.PEAK_MATRICES`
      entry).
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
          f"EASE refused before allocating: fitting it on M = {n_items:,} items holds "
          f"~{n:g} dense M x M float32 matrices at peak in {where} memory ({n:g} x 4 bytes x M^2 = "
          f"{need / 1e9:.1f} GB) but the limit there is {limit / 1e9:.1f} GB ({source}); at most "
          f"~{max_items_in_memory(limit, n):,} items fit. Set config.baselines.ease_max_items "
          f"below {n_items} to skip EASE on this data, or run it where more memory is free.")
