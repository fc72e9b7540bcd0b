"""Per-user training losses of the actors (MLE and learning-to-rank), as pure, jittable JAX functions.

Every loss maps `logits [B, M]` (an actor's scores over all M items) and `x [B, M]` (the user's
full 0/1 row, the target) to a per-user value `[B]` (float32). Nothing here averages over users or
masks padded users: callers weight by `valid [B]` and normalise. The same per-user value is the
critic's first feature (paper, Sec. 5 "Baseline Methods": "the L2R loss is used to replace L_E in
equation 5 to construct the feature"), so it is meaningful per user, not only its gradient.

Losses (names are the keys of `LOSSES`, selected by `config.actor.loss`):

  * "multinomial"  `multinomial_nll`: `-sum_i x_i log softmax(logits)_i`, eq. 4's L_E (Mult-VAE /
    Mult-DAE; the authors' `models.py` `construct_actor_error`).
  * "gaussian"     `gaussian_nll`: `0.5 * sum_i (x_i - logits_i)^2`, the Gaussian log-likelihood
    with unit variance, constant dropped (Table 2 "VAE (Gaussian)"; see its docstring for what the
    authors' `GaussianVAE` actually ran).
  * "weighted_sq"  `weighted_squared_error`: `sum_i c_i (x_i - logits_i)^2`, `c_i = positive_weight`
    on positives and 1 elsewhere (the authors' `WeightedMatrixFactorization`, Table 2 "MF").
  * "warp"         `warp_loss`: eq. 9 of Appendix B, exactly, in O(M log M) per user.
  * "lambdarank"   `lambdarank_loss`: |dNDCG|-weighted RankNet loss whose gradient is exactly the
    LambdaRank lambdas (Burges et al., 2007), via `jax.custom_vjp`; O(n_pos * M) per user.

Shared conventions:
  * `x` is read as binary for the ranking losses (an item is positive iff `x > 0`); the squared
    losses and the multinomial NLL use its value.
  * Logits must be finite (the ranking losses sort them; `-inf` masking is an evaluation device).
  * Users with no positives give 0 for the ranking losses (no pairs) and finite gradients for all;
    all-positive rows give 0 for the ranking losses (no negatives).
  * Ties among scores: ranks are 1-based positions in a *stable* descending sort, so among equal
    scores the lower item index ranks first (the `lax.top_k` order used by `metrics.py`). Hinge
    violations are strict (`margin + s_j - s_i > 0`).
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np


# --------------------------------------------------------------------------------------------------
# MLE-style losses.


def multinomial_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
  """Multinomial negative log-likelihood (paper eq. 4's L_E; Liang et al. 2018).

  Args:
    logits: `[B, M]` unnormalised scores.
    x: `[B, M]` click counts / 0-1 row (the target; all of the user's items).

  Returns:
    float32 `[B]`: `-sum_i x_i * log_softmax(logits)_i`. Items with `x_i = 0` contribute exactly 0
    (also when their logit is `-inf`).
  """
  logits = jnp.asarray(logits, jnp.float32)
  x = jnp.asarray(x, jnp.float32)
  lsm = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.sum(jnp.where(x != 0, x * lsm, 0.0), axis=-1)


def gaussian_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
  """Gaussian NLL with unit variance, "VAE (Gaussian)" of Table 2 / Sec. 5.2 (1).

  `-log N(x | logits, I) = 0.5 * sum_i (x_i - logits_i)^2 + (M/2) log(2 pi)`; the constant is
  dropped (it changes neither the gradient nor, being the same for every user, the critic's
  ranking of users). The logits are used as the Gaussian means directly (no softmax).

  Note: the authors' code (`models.py` `GaussianVAE`) actually trains a *weighted* squared error,
  `sum_i (1 + (w - 1) x_i)(x_i - logits_i)^2` with `positive_weights=2.0` by default and no 0.5:
  that is `weighted_squared_error(logits, x, positive_weight=2.0)`. This function follows the
  brief/paper wording (plain unit-variance Gaussian).

  Args:
    logits: `[B, M]` predicted means.
    x: `[B, M]` targets.

  Returns:
    float32 `[B]`: `0.5 * sum_i (x_i - logits_i)^2`.
  """
  d = jnp.asarray(x, jnp.float32) - jnp.asarray(logits, jnp.float32)
  return 0.5 * jnp.sum(d * d, axis=-1)


def weighted_squared_error(logits: jax.Array, x: jax.Array,
                           positive_weight: float = 5.0) -> jax.Array:
  """Weighted squared error of weighted MF (Hu et al. 2008), the authors' WMF actor loss.

  Matches `models.py` `WeightedMatrixFactorization.construct_actor_error` exactly:
  `error_scaler = x * (positive_weights - 1) + 1`, `sum_i error_scaler_i * (x_i - pred_i)^2`, with
  no 0.5 factor; `main_wmf.py` uses `positive_weights = 5.0` (our default). For a 0/1 row the
  confidence is `c_i = positive_weight` on positives and 1 on negatives. (The class docstring
  there says "1 for negative, 2 for positive" when the weight is 1; the code, which we follow,
  gives the positives weight `positive_weight` itself.)

  Args:
    logits: `[B, M]` predictions.
    x: `[B, M]` 0/1 targets.
    positive_weight: confidence of the positive entries (Python float or scalar array).

  Returns:
    float32 `[B]`: `sum_i c_i (x_i - logits_i)^2`, `c_i = 1 + (positive_weight - 1) x_i`.
  """
  x = jnp.asarray(x, jnp.float32)
  d = x - jnp.asarray(logits, jnp.float32)
  c = 1.0 + (positive_weight - 1.0) * x
  return jnp.sum(c * d * d, axis=-1)


# --------------------------------------------------------------------------------------------------
# Helpers for the ranking losses.


def _harmonic_table(m: int) -> jnp.ndarray:
  """`H[r] = sum_{k=1..r} 1/k` for r = 0..m (H[0] = 0), float32 `[m + 1]`, built in float64."""
  h = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, m + 1, dtype=np.float64))])
  return jnp.asarray(h, jnp.float32)


def _idcg_table(m: int) -> jnp.ndarray:
  """`IDCG[n] = sum_{r=1..n} 1/log2(r + 1)` for n = 0..m (IDCG[0] = 0), float32 `[m + 1]`."""
  d = 1.0 / np.log2(np.arange(2, m + 2, dtype=np.float64))
  return jnp.asarray(np.concatenate([[0.0], np.cumsum(d)]), jnp.float32)


def _descending_ranks(s: jax.Array) -> jax.Array:
  """1-based rank of every item in a stable descending sort of each row, int32 `[B, M]`.

  Among equal scores the lower index ranks first (as `lax.top_k`). O(M log M) per row.
  """
  order = jnp.argsort(-s, axis=-1, stable=True)
  return (jnp.argsort(order, axis=-1) + 1).astype(jnp.int32)   # inverse permutation


# --------------------------------------------------------------------------------------------------
# WARP.


def warp_loss(logits: jax.Array, x: jax.Array, margin: float = 1.0,
              rank: str = "violations") -> jax.Array:
  """WARP loss, paper Appendix B eq. 9, computed exactly in O(M log M) per user.

  Formula (eq. 9 as written, per user, with s = logits, K+ = {i: x_i > 0}, K- = the rest):

      L = sum_{i in K+} sum_{j in K-} w(r_i) * max(0, margin + s_j - s_i),
      w(r) = sum_{k=1..r} 1/k   (w(0) = 0),

  i.e. each positive's summed hinge is multiplied by `w(r_i)` itself. This is NOT Weston et al.'s
  (2011) normalised form `sum_i L(r_i) / r_i * sum_j hinge_ij` (their 1/r_i undoes the
  sampling estimate of the rank; eq. 9 has no 1/r_i, and neither has the authors' code).

  `rank` chooses what `r_i` is ("the rank for the i-th item" in the paper):
    * "violations" (default): `r_i = #{j in K-: margin + s_j - s_i > 0}`, the number of negatives
      that violate the margin against positive i (WARP's notion of rank, Weston et al. 2011).
      Then `w(r_i) * hinge_sum_i` is piecewise smooth and `w` is constant on each piece.
    * "position": `r_i` = the 1-based position of item i among all M items in a descending sort of
      the scores (positives included; stable ties). With `margin=0.0` this reproduces the authors'
      "exact margin-free WARP" error vector (`warp_utils.py`: `loss = <pred, error_vector>`, whose
      weight for a positive is the harmonic number of its overall sorted position and whose pairs
      are the negatives scored above it).

  Gradient: autodiff through the hinge terms with the counts / ranks (and hence the weights) held
  constant -- they are piecewise constant in the scores, so this is the exact gradient almost
  everywhere: `dL/ds_i = -w(r_i) * #viol_i` for a positive, and `dL/ds_j = sum of w(r_i) over the
  positives i that j violates` for a negative.

  Algorithm (vectorised over the batch): centre each row (stop-gradient shift; the loss is
  shift-invariant), sort the negatives' scores ascending (positives parked at -inf), take suffix
  sums, and for every item find the violators with `searchsorted(sorted_neg, s_i - margin,
  side="right")`; then `sum_{j viol} (margin + s_j - s_i) = n_viol * (margin - s_i) +
  suffix_sum`. Cost O(B M log M); memory a handful of `[B, M]` arrays (+ one more sort for
  rank="position"). Ties: a negative with `margin + s_j - s_i == 0` does not violate (its hinge
  is 0 anyway; this only matters for the count `r_i`).

  Precision: the hinge sum is formed as a difference of O(n_viol * |s|) quantities, so its absolute
  float32 error is about 1e-7 * n_viol * max|s - mean(s)| (tiny relative to the sum unless many
  violators each violate by a tiny amount). The gradient does not go through that subtraction.

  Args:
    logits: `[B, M]` finite scores.
    x: `[B, M]`; positives are `x > 0`.
    margin: hinge margin (eq. 9: 1.0; the authors' code: 0.0). Python float.
    rank: "violations" or "position" (see above). Static.

  Returns:
    float32 `[B]`; 0 for users with no positives or no negatives.
  """
  if rank not in ("violations", "position"):
    raise ValueError(f"warp_loss: rank must be 'violations' or 'position', got {rank!r}")
  s = jnp.asarray(logits, jnp.float32)
  b, m = s.shape
  pos = jnp.asarray(x) > 0
  s = s - jax.lax.stop_gradient(jnp.mean(s, axis=-1, keepdims=True))

  # Negatives' scores ascending; positives are parked at -inf at the front.
  neg_key = jnp.where(pos, -jnp.inf, s)
  sorted_neg = jnp.sort(neg_key, axis=-1)
  vals = jnp.where(jnp.isfinite(sorted_neg), sorted_neg, 0.0)
  # suffix[k] = sum_{l >= k} vals[l], k = 0..M (suffix[M] = 0).
  suffix = jnp.concatenate(
      [jnp.cumsum(vals[:, ::-1], axis=-1)[:, ::-1], jnp.zeros((b, 1), jnp.float32)], axis=-1)

  thresh = jax.lax.stop_gradient(s) - margin
  idx = jax.vmap(functools.partial(jnp.searchsorted, side="right"))(
      jax.lax.stop_gradient(sorted_neg), thresh)                     # [B, M], #negatives <= s_i - margin
  n_viol = m - idx                                                   # negatives with s_j > s_i - margin
  hinge_sum = (n_viol.astype(jnp.float32) * (margin - s)
               + jnp.take_along_axis(suffix, idx, axis=-1))          # sum_{j viol} (margin + s_j - s_i)

  h = _harmonic_table(m)
  if rank == "violations":
    r = n_viol
  else:
    r = _descending_ranks(jax.lax.stop_gradient(s))
  w = h[r]
  per_item = jnp.where(pos & (n_viol > 0), w * hinge_sum, 0.0)
  return jnp.sum(per_item, axis=-1)


# --------------------------------------------------------------------------------------------------
# LambdaRank.


def _lambdarank_impl(s: jax.Array, x: jax.Array, k: Optional[int], chunk_size: int,
                     with_lambdas: bool):
  """Loss `[B]` and (optionally) the lambdas `[B, M]`; see `lambdarank_loss`."""
  s = s.astype(jnp.float32)
  b, m = s.shape
  pos = x > 0
  npos = jnp.sum(pos, axis=-1, dtype=jnp.int32)

  ranks = _descending_ranks(s)
  disc = 1.0 / jnp.log2(1.0 + ranks.astype(jnp.float32))
  if k is not None:
    disc = jnp.where(ranks <= k, disc, 0.0)
    n_ideal = jnp.minimum(npos, k)
  else:
    n_ideal = npos
  idcg = _idcg_table(m)[n_ideal]
  inv_idcg = jnp.where(npos > 0, 1.0 / jnp.maximum(idcg, 1e-30), 0.0)       # [B]

  # Flat (row-major) indices of every positive in the batch, padded to a multiple of chunk_size.
  c = int(chunk_size)
  n_flat = b * m
  n_pad = -(-n_flat // c) * c
  # Stable sort of the flattened "is negative" flags: the first `total` entries are the positives.
  flat = jnp.argsort(~pos.reshape(-1), stable=True).astype(jnp.int32)
  flat = jnp.pad(flat, (0, n_pad - n_flat))
  total = jnp.sum(npos)
  n_chunks = (total + c - 1) // c
  neg_f = (~pos).astype(jnp.float32)
  lane = jnp.arange(c, dtype=jnp.int32)

  def body(carry):
    t, loss, lam = carry
    ids = jax.lax.dynamic_slice(flat, (t * c,), (c,))
    valid = (t * c + lane) < total
    ub = ids // m
    ui = ids % m
    s_rows = s[ub]                                                     # [C, M]
    z = s_rows - s[ub, ui][:, None]                                    # s_j - s_i
    scale = jnp.where(valid, inv_idcg[ub], 0.0)
    delta = (jnp.abs(disc[ub, ui][:, None] - disc[ub]) * (neg_f[ub] * scale[:, None]))
    loss = loss.at[ub].add(jnp.sum(delta * jax.nn.softplus(z), axis=-1))
    if with_lambdas:
      rho = delta * jax.nn.sigmoid(z)                                  # |dNDCG| sigma(-(s_i - s_j))
      lam = lam.at[ub].add(rho)                                        # negatives: + sum_i rho_ij
      lam = lam.at[ub, ui].add(-jnp.sum(rho, axis=-1))                 # positive i: - sum_j rho_ij
    return t + 1, loss, lam

  # The accumulators are built from `s` (zeros_like) so that under `shard_map` they carry the same
  # varying-manual-axes type as the values added to them in the loop.
  init = (jnp.zeros((), n_chunks.dtype), jnp.zeros_like(s[:, 0]),
          jnp.zeros_like(s if with_lambdas else s[:1, :1]))
  _, loss, lam = jax.lax.while_loop(lambda carry: carry[0] < n_chunks, body, init)
  return loss, (lam if with_lambdas else None)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _lambdarank(s, x, k, chunk_size):
  return _lambdarank_impl(s, x, k, chunk_size, with_lambdas=False)[0]


def _lambdarank_fwd(s, x, k, chunk_size):
  loss, lam = _lambdarank_impl(s, x, k, chunk_size, with_lambdas=True)
  return loss, (lam, x)


def _lambdarank_bwd(k, chunk_size, res, g):
  del k, chunk_size
  lam, x = res
  return (g[:, None] * lam).astype(jnp.float32), jnp.zeros_like(x)


_lambdarank.defvjp(_lambdarank_fwd, _lambdarank_bwd)


def lambdarank_loss(logits: jax.Array, x: jax.Array, k: Optional[int] = None,
                    chunk_size: int = 256) -> jax.Array:
  """LambdaRank for NDCG (Burges et al., 2007), exact, with its lambdas as the gradient.

  Per user, s = logits, K+ = {i: x_i > 0}, K- = the rest, ranks 1-based from a stable descending
  sort of the current scores, `D(r) = 1/log2(1 + r)` (with `k`: `D(r) = 0` for `r > k`), and

      |dNDCG_ij| = |D(rank_i) - D(rank_j)| / IDCG,   IDCG = sum_{r=1..n} 1/log2(1 + r),
      n = |K+| (or min(|K+|, k) if k is given);

  (binary gains, so swapping a positive i and a negative j changes NDCG by exactly this amount;
  with `k` this is the change of NDCG@k, which is 0 when both ranks are beyond k.)

  Forward value (the critic's feature): the |dNDCG|-weighted RankNet loss

      L = sum_{i in K+} sum_{j in K-} |dNDCG_ij| * log(1 + exp(-(s_i - s_j))),

  with |dNDCG| evaluated at the current ranks. Gradient (custom VJP) = the LambdaRank lambdas

      dL/ds_i = lambda_i = -sum_{j in K-} |dNDCG_ij| * sigmoid(-(s_i - s_j))   for i in K+,
      dL/ds_j = lambda_j = +sum_{i in K+} |dNDCG_ij| * sigmoid(-(s_i - s_j))   for j in K-,

  which is exactly the gradient of L with |dNDCG| held constant (it is piecewise constant in the
  scores). Sign convention: these are derivatives of a loss to be *minimised*, so gradient descent
  raises positives' scores and lowers negatives'. This matches the authors' `lambdarank_utils.py`
  (whose final `lambs = -lambs` yields this sign), except for the forward value: theirs returns
  the logits themselves (summed into a meaningless "actor error"); ours is the weighted RankNet
  loss above so that the value is a usable critic feature. Cotangent w.r.t. x: zero.

  Computation and cost: all (user, positive) pairs of the batch are listed (row-major `nonzero`)
  and processed `chunk_size` positives at a time in a `lax.while_loop` whose trip count is
  `ceil(total positives / chunk_size)` (dynamic: no static bound on positives per user, nothing is
  truncated). Each step gathers its users' rows, `[chunk_size, M]`, and computes all of their
  pos-neg pairs at once. Work O(sum_u |K+_u| * M) (plus the O(B M log M) rank sort); memory
  O(chunk_size * M + B * M). The forward-only primal skips the lambdas; under `jax.grad` one pass
  computes the loss and the lambdas (the lambdas `[B, M]` are the only residual).

  Args:
    logits: `[B, M]` finite scores.
    x: `[B, M]`; positives are `x > 0`.
    k: None (full NDCG, as the authors) or a static Python int cut-off.
    chunk_size: static; positives per loop step (trade memory for loop overhead).

  Returns:
    float32 `[B]`; 0 for users with no positives or no negatives.
  """
  if k is not None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
      raise ValueError(f"lambdarank_loss: k must be None or a positive int, got {k!r}")
    k = int(k)
  if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
    raise ValueError(f"lambdarank_loss: chunk_size must be a positive int, got {chunk_size!r}")
  return _lambdarank(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.float32), k,
                     int(chunk_size))


# --------------------------------------------------------------------------------------------------
# Registry.

LOSSES: dict[str, Callable[..., jax.Array]] = {
    "multinomial": multinomial_nll,
    "gaussian": gaussian_nll,
    "weighted_sq": weighted_squared_error,
    "warp": warp_loss,
    "lambdarank": lambdarank_loss,
}


def per_user_loss(name: str, logits: jax.Array, x: jax.Array, **kw) -> jax.Array:
  """Dispatches to `LOSSES[name](logits, x, **kw)`; returns float32 `[B]`.

  Raises:
    ValueError: if `name` (the value of `config.actor.loss`) is not a key of `LOSSES`.
  """
  try:
    fn = LOSSES[name]
  except (KeyError, TypeError):
    raise ValueError(
        f"Unknown loss {name!r} in config.actor.loss; expected one of {sorted(LOSSES)}") from None
  return fn(logits, x, **kw)
