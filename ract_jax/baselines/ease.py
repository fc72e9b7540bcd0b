"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

Closed form: `G = X^T X + lam I`, `P = G^{-1}`, `B = I - P diag(1/diag(P))`, i.e.
`B_ij = -P_ij / P_jj` for i != j and `B_jj = 0`. Column j of B is the ridge regression of item j on
all other items (the zero-diagonal constraint), see `tests/test_baselines.py`. Scores: `x_u B`.

Numerics. The default path inverts `G` on the JAX default device (the GPU when there is one) in
float32 by Cholesky. `G` is symmetric positive definite with every eigenvalue >= lam, so its
condition number is at most `(lambda_max(X^T X) + lam) / lam` (e.g. ~2,000 if lambda_max is
~1e6 and lam = 500; not measured on the real datasets). Cholesky of an SPD matrix is backward
stable without pivoting, so float32 (eps 6e-8) leaves relative errors around 1e-4 at most there,
small against the score gaps that decide a top-100 ranking; for lam >= 1 it does not break down.
`float64=True` solves on the host with scipy in float64 instead (tests, small M, or a precision
check). Time: the float32 solve took 11.5 s for M = 6,000 on the 2-core CPU (~M^3 scaling, so
roughly 7 minutes for ML-20M's 20,108 items there).

Memory. The solve keeps about three dense M x M float32 matrices live (G or its Cholesky
factor, the identity right-hand side, and P, which becomes B in place), i.e. `12 * M**2` bytes; on
the CPU backend the host copy of G adds a fourth (measured here on CPU, M = 6,000: `fit` peaks at
3.6 M^2 float32 above the baseline RSS, the solve alone at 2.8 M^2). `max_items_in_memory`
inverts this:

  ====================================  ===========  ==========================================
  memory available                       max items M  datasets (M^2 float32 = 4 M^2 bytes)
  ====================================  ===========  ==========================================
  24 GB host, CPU backend (4 matrices)   ~ 38,700     ML-20M (20,108; ~6.5 GB) fits; MSD not
  80 GB GPU (3 matrices)                 ~ 81,600     MSD (41,140; ~20 GB at peak) fits
  60 GB = JAX's default 75% of 80 GB     ~ 70,700
  ====================================  ===========  ==========================================

JAX on GPU preallocates 75% of the card by default (`XLA_PYTHON_CLIENT_MEM_FRACTION`). The GPU
figures are the 3-matrix estimate; they were not measured on a GPU. `fit(...,
max_items=config.baselines.ease_max_items)` refuses larger M up front with a ValueError.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ract_jax.data.csr import CSR

_BYTES_F32 = 4


def max_items_in_memory(bytes_available: float, n_matrices: int = 3) -> int:
  """Largest item count M whose EASE solve fits: `n_matrices * 4 * M**2 <= bytes_available`.

  Args:
    bytes_available: memory the solve may use, in bytes.
    n_matrices: dense M x M float32 matrices live at peak (3 on a GPU; 4 on the CPU backend, where
      the host copy of G shares the same RAM).

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
  """Fits EASE on the training users.

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
    b: float32 `[M, M]` from `fit`.
    x_dense: 0/1 `[B, M]` fold-in batch (the caller masks fold-in items to -inf afterwards).

  Returns:
    float32 `[B, M]`.
  """
  # HIGHEST: the default float32 matmul precision on GPUs/TPUs may round B to TF32/bf16.
  return jnp.dot(x_dense.astype(jnp.float32), b, precision=jax.lax.Precision.HIGHEST)
