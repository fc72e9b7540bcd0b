"""SLIM (Ning & Karypis, "SLIM: Sparse Linear Methods for Top-N Recommender Systems", ICDM 2011).

Problem. An item-item matrix W >= 0 with zero diagonal solving, column by column,

  min_w  1/2 ||x_j - X w||^2 + l1 ||w||_1 + l2/2 ||w||^2   s.t.  w >= 0,  w_j = 0,

(Ning & Karypis' eq. 3: beta = l2, lambda = l1, the objective *not* divided by the number of users,
as in their SLIM library). In Gram form, with G = X^T X and g_j = G[:, j]:

  min_w  1/2 w^T (G + l2 I) w - g_j^T w + l1 1^T w   s.t.  w >= 0,  w_j = 0.

Liang et al. (2018, section 4.4) grid-search both regularisers over {0.1, 0.5, 1, 5} on validation
NDCG@100 (RaCT's Table 1 copies their SLIM numbers; they did not run it on MSD, too slow).

Solver. ADMM on all columns at once, in JAX (the splitting of Steck et al., "ADMM SLIM", WSDM 2020,
here with SLIM's exact objective): B = C, B carrying the smooth part and the zero diagonal, C the l1
term and the non-negativity. With P = (G + (l2 + rho) I)^{-1} computed once (Cholesky) and
over-relaxation a (Boyd et al. 2011, section 3.4.3):

  B <- P R - P diag(diag(P R) / diag(P)),   R = G + rho (C - U)   (zero-diagonal ridge step, the
                                                                 EASE closed form)
  B^ = a B + (1 - a) C
  C <- max(0, B^ + U - l1 / rho)                                 (prox of l1 + [w >= 0])
  U <- U + B^ - C.

Each iteration is one dense M x M x M matmul. Every `check_every` iterations it stops if the
relative primal residual ||B - C||_F and the relative change ||C - C_prev||_F (both over max(||B||,
||C||)) are below `tol`, else after `iters` iterations. The returned W is C (exactly >= 0, zero
diagonal, sparse). At convergence W satisfies the KKT conditions of every column's problem
(`tests/test_baselines_more.py` checks them and compares with a coordinate-descent reference to 1e-4
at M = 8). Defaults rho = 3 (mean diag(G) + l2) and a = 1.8 were the fastest of a small sweep (rho /
(mean diag(G) + l2) in {2, 3, 5, 8}, a in {1, 1.6, 1.8}) on a 1,200-item ML-1M subset and a random
matrix; plain ADMM (a = 1, rho = mean diag(G)) was 10x to 1000x further from the converged W after
the same number of iterations there.

Cost. Memory: ~6 dense M x M float32 matrices (G, P, B, C, U, C_prev), ~24 M^2 bytes (0.33 GB at M =
3,706; 9.7 GB at ML-20M's 20,108; 40.6 GB at MSD's 41,140). Time: one Cholesky inverse plus O(M^3)
per iteration. Measured on the 2-core CPU (jax 0.10.2, float32): ~2.0 s per iteration at M = 3,706
(~50 GFLOP/s); `fit` with the defaults on a random 5,000-user x 3,706-item matrix with ~800k ones
took 99 s (45 iterations to tol). On ML-1M (3,690 items, 4,840 training users) the defaults
converged to tol = 1e-4 in 105 iterations, 215 s, validation NDCG@100 0.462 (l1 = 1, l2 = 5: 275
iterations, 529 s, 0.450; l1 = 5, l2 = 1500: 50 iterations, 0.457; EASE: 0.474). So up to ~5,000
items it is practical on this CPU (minutes); ML-20M / Netflix (~20k items: ~150x the flops per
iteration, i.e. 5 min per iteration here) need a GPU (an H100 at ~50 TFLOP/s float32: ~0.3 s per
iteration, not measured). `fit(..., max_items=config.baselines.slim_max_items)` refuses larger M
with a ValueError (default cap `DEFAULT_MAX_ITEMS` = 25,000: ML-20M and Netflix pass, MSD does not,
as in Liang et al.). Scoring is `x @ W`, O(B M^2).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ract_jax.baselines import ease
from ract_jax.data.csr import CSR

_HI = jax.lax.Precision.HIGHEST
_BYTES_F32 = 4
_MATRICES = 6

DEFAULT_L1 = 5.0
DEFAULT_L2 = 500.0
DEFAULT_ITERS = 300
DEFAULT_TOL = 1e-4
DEFAULT_RELAX = 1.8
DEFAULT_MAX_ITEMS = 25_000


class Info(NamedTuple):
  """How the ADMM run ended: iterations run, final relative primal and dual residuals."""

  iters: jax.Array
  primal: jax.Array
  dual: jax.Array


def check_size(n_items: int, max_items: int | None) -> None:
  """Raises ValueError if `n_items` exceeds `max_items` (None: no cap)."""
  if max_items is not None and n_items > max_items:
    need_gb = _MATRICES * _BYTES_F32 * n_items**2 / 1e9
    raise ValueError(
        f"SLIM needs ~{_MATRICES} dense {n_items} x {n_items} float32 matrices (~{need_gb:.1f} GB) "
        f"and O(M^3) time per ADMM iteration, but the cap is {max_items} items; raise "
        f"config.baselines.slim_max_items or drop 'slim' from config.baselines.names.")


@functools.partial(jax.jit, static_argnames=("iters", "check_every"))
def _admm(g, l1, l2, rho, tol, relax, *, iters, check_every):
  m = g.shape[0]
  diag = jnp.arange(m)
  h = g.at[diag, diag].add(l2 + rho)
  p = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(h, lower=True),
                                 jnp.eye(m, dtype=g.dtype))
  p = 0.5 * (p + p.T)
  pdiag = jnp.diagonal(p)
  # P G = I - (l2 + rho) P, so P R = I - (l2 + rho) P + rho P (C - U).
  base = jnp.eye(m, dtype=g.dtype) - (l2 + rho) * p

  def one(c, u):
    pr = base + rho * jnp.dot(p, c - u, precision=_HI)
    b = pr - p * (jnp.diagonal(pr) / pdiag)[None, :]
    b = b.at[diag, diag].set(0.0)
    b_hat = relax * b + (1.0 - relax) * c  # Over-relaxation (Boyd et al. 2011, section 3.4.3).
    c_new = jnp.maximum(b_hat + u - l1 / rho, 0.0).at[diag, diag].set(0.0)
    u = u + b_hat - c_new
    return b, c_new, u

  def cond(state):
    it, _, _, primal, dual = state
    return (it < iters) & ((primal > tol) | (dual > tol))

  def body(state):
    it, c, u, _, _ = state

    def inner(_, cu):
      _, c2, u2 = one(*cu)
      return c2, u2

    c, u = jax.lax.fori_loop(0, check_every - 1, inner, (c, u))
    b, c_new, u = one(c, u)
    scale = jnp.maximum(jnp.maximum(jnp.linalg.norm(b), jnp.linalg.norm(c_new)), 1e-12)
    primal = jnp.linalg.norm(b - c_new) / scale
    dual = jnp.linalg.norm(c_new - c) / scale  # rho ||dC|| / ||rho U|| ~ ||dC|| / ||C||.
    return it + check_every, c_new, u, primal, dual

  z = jnp.zeros((m, m), g.dtype)
  inf = jnp.array(jnp.inf, g.dtype)
  it, c, _, primal, dual = jax.lax.while_loop(cond, body, (jnp.int32(0), z, z, inf, inf))
  return c, Info(it, primal, dual)


def fit_from_gram(gram, l1: float = DEFAULT_L1, l2: float = DEFAULT_L2, iters: int = DEFAULT_ITERS,
                  tol: float = DEFAULT_TOL, rho: float | None = None, relax: float = DEFAULT_RELAX,
                  check_every: int = 5, return_info: bool = False):
  """SLIM weights from a precomputed `X^T X` (reuse it across a grid of l1, l2).

  Args:
    gram: float32 `[M, M]` co-occurrence counts (`ease.gram_matrix`).
    l1: l1 weight (Ning & Karypis' lambda; >= 0).
    l2: l2 weight (their beta; >= 0).
    iters: maximum ADMM iterations (rounded up to a multiple of `check_every`).
    tol: stop when both relative residuals (module docstring) are below this.
    rho: ADMM penalty (> 0); None: 3 x (mean of diag(G) + l2) (at least 1).
    relax: over-relaxation factor in [1, 2) (Boyd et al. 2011, section 3.4.3; 1: plain ADMM).
    check_every: iterations between two residual checks.
    return_info: also return an `Info`.

  Returns:
    float32 `[M, M]` W (jax array; W >= 0, zero diagonal), and the `Info` if asked.
  """
  g = jnp.asarray(gram, jnp.float32)
  if l1 < 0 or l2 < 0:
    raise ValueError(f"SLIM needs l1, l2 >= 0, got l1={l1}, l2={l2}")
  if rho is None:
    rho = max(1.0, 3.0 * (float(jnp.mean(jnp.diagonal(g))) + l2))
  if not 0.0 < relax < 2.0:
    raise ValueError(f"SLIM's ADMM needs 0 < relax < 2, got {relax}")
  if not rho > 0:
    raise ValueError(f"SLIM's ADMM needs rho > 0, got {rho}")
  check_every = max(1, int(check_every))
  n_checks = max(1, -(-int(iters) // check_every))
  w, info = _admm(g, jnp.float32(l1), jnp.float32(l2), jnp.float32(rho), jnp.float32(tol),
                  jnp.float32(relax), iters=n_checks * check_every, check_every=check_every)
  return (w, info) if return_info else w


def fit(train: CSR, l1: float = DEFAULT_L1, l2: float = DEFAULT_L2, iters: int = DEFAULT_ITERS,
        tol: float = DEFAULT_TOL, rho: float | None = None, relax: float = DEFAULT_RELAX,
        max_items: int | None = DEFAULT_MAX_ITEMS, return_info: bool = False):
  """Fits SLIM on the training users.

  Args:
    train: training users' histories, binary `[n_users, M]` CSR.
    l1, l2, iters, tol, rho, relax, return_info: see `fit_from_gram`.
    max_items: refuse (ValueError) above this many items; pass `config.baselines.slim_max_items`
      (None: no cap).

  Returns:
    float32 `[M, M]` W (W >= 0, zero diagonal), and an `Info` if `return_info`.

  Complexity: O(M^3) per ADMM iteration, ~24 M^2 bytes (module docstring for measured times).
  """
  check_size(train.n_items, max_items)
  gram = ease.gram_matrix(train)
  return fit_from_gram(gram, l1=l1, l2=l2, iters=iters, tol=tol, rho=rho, relax=relax,
                       return_info=return_info)


# SLIM scores a batch exactly as EASE does: `x @ W` at full float32 precision (jittable).
scores = ease.scores


def max_items_in_memory(bytes_available: float, n_matrices: int = _MATRICES) -> int:
  """Largest M whose ADMM state (`n_matrices` dense M x M float32) fits in `bytes_available`."""
  import math
  return int(math.isqrt(int(bytes_available // (n_matrices * _BYTES_F32))))


def objective(x: np.ndarray, w: np.ndarray, l1: float, l2: float) -> float:
  """`sum_j [1/2 ||x_j - X w_j||^2 + l1 ||w_j||_1 + l2/2 ||w_j||^2]` in float64 (tests, small M)."""
  x = np.asarray(x, np.float64)
  w = np.asarray(w, np.float64)
  return float(0.5 * np.sum((x - x @ w)**2) + l1 * np.abs(w).sum() + 0.5 * l2 * np.sum(w * w))
