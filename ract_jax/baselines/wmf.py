"""Weighted matrix factorisation (WMF; Hu, Koren & Volinsky, "Collaborative Filtering for Implicit
Feedback Datasets", ICDM 2008), fitted by alternating least squares, under strong generalisation.

Model. Binary preferences `p_ui = x_ui`, confidences `c_ui = 1 + alpha * x_ui` and the objective

  L(U, V) = sum_{u,i} c_ui (p_ui - u_u . v_i)^2 + lam (||U||_F^2 + ||V||_F^2).

Liang et al. (2018, section 4.4) train WMF with ALS, weight 1 on the zeros and tune the weight on
the ones among {2, 5, 10, 30, 50, 100} (`1 + alpha` here, i.e. alpha in {1, 4, 9, 29, 49, 99}) and
the dimension K in {100, 200} on validation NDCG@100; RaCT's Table 1 copies their numbers.

ALS. With the other side fixed each row has an exact ridge solution (Hu et al., eq. 4):

  u = (V^T C_u V + lam I)^{-1} V^T C_u p_u,   V^T C_u V = V^T V + alpha V_u^T V_u,
  V^T C_u p_u = (1 + alpha) V_u^T 1,

where V_u holds the rows of V for u's items (the "standard trick": the all-items part V^T V is
shared by every user). Each half-step therefore costs O(nnz k^2 + n k^3) and decreases L (an exact
block minimisation; `tests/test_baselines_more.py` checks monotonicity). On the host (`layout`, once
per fit) each row's entries are cut into fixed-width segments and consecutive rows are packed into
groups of equal shape; on the device one jitted half-step maps over the groups, accumulates each
group's `V_u^T V_u` from `[S, width, k]` gathers of its segments (`lax.scan`, scatter-add into
`[rows_per_group, k, k]`) and solves the group's systems by batched Cholesky. One compilation per
side, memory O(rows_per_group k^2 + S width k) on the device, ~O(nnz) int32 on the host.

Strong generalisation. `fit` keeps only the item factors V (the training users' factors are not
needed). A held-out user is folded in by one exact ALS user half-step from its fold-in row with V
fixed (`fold_in`), and scored by `u V^T` (`scores`). Inside `scores` the fold-in batch is dense
`[B, M]`, so `V^T diag(x) V` is accumulated over item chunks (`lax.scan`) in O(B M k^2) flops and
O(B * chunk * k) memory; that is what the evaluation code jits.

Measured (2-core CPU, jax 0.10.2, float32, k = 100; random binary matrix of 5,000 users x 3,706
items with ~800k ones and skewed item popularity): ~3.7 s per ALS iteration (k = 200: ~14 s) after
a ~7 s first (compiling) one, so `fit` with the defaults takes ~43 s including the host layout;
`scores` on 500 users ~1.2 s. On ML-1M (all ratings as implicit, 4,840 training users, 600
validation users) the defaults (k = 100, alpha = 2, lam = 30, 10 iterations) gave validation
NDCG@100 0.474 (alpha = 9, lam = 100: 0.465; alpha = 9, lam = 10: 0.448; alpha = 4, lam = 100:
0.437; alpha = 29: <= 0.44; alpha = 2, lam = 100: 0.399; EASE lam = 500: 0.474).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ract_jax.data.csr import CSR

_HI = jax.lax.Precision.HIGHEST

# Defaults (ML-1M-sized data; see `fit`). Expose them in the config as the evaluation needs.
DEFAULT_K = 100
DEFAULT_ALPHA = 2.0  # Weight 1 + alpha = 3 on the ones (best of a small ML-1M sweep, module doc).
DEFAULT_LAM = 30.0
DEFAULT_ITERS = 10


# --------------------------------------------------------------------------------------------------
# Host-side layout: rows cut into fixed-width segments, segments packed into equal-shaped groups.
# --------------------------------------------------------------------------------------------------


class Layout(NamedTuple):
  """One side of the ALS problem (users or items) laid out for the batched solves.

  Each row's entries are cut into segments of `width` entries (the last one padded). Consecutive
  rows are packed greedily into groups of at most `rows_per_group` rows and `segs_per_group`
  segments, so that every group has the same shapes (one compilation) and bounded memory.

  seg_items: int32 `[n_groups, segs_per_group, width]` entry indices (0 for padding).
  seg_mask: float32 `[n_groups, segs_per_group, width]` 1 for real entries.
  seg_row: int32 `[n_groups, segs_per_group]` row of each segment within its group
    (`rows_per_group` for padding segments: dropped by the scatter).
  group_rows: int32 `[n_groups, rows_per_group]` global row of each group row (-1 for padding).
  n_rows: number of rows of this side.
  segs_per_step: segments gathered at once on the device (divides `segs_per_group`).
  """

  seg_items: Any
  seg_mask: Any
  seg_row: Any
  group_rows: Any
  n_rows: int
  segs_per_step: int

  def to_device(self) -> "Layout":
    return self._replace(**{f: jnp.asarray(getattr(self, f))
                            for f in ("seg_items", "seg_mask", "seg_row", "group_rows")})


def layout(csr: CSR, width: int = 64, rows_per_group: int = 512, entries_per_group: int = 1 << 16,
           segs_per_step: int = 256) -> Layout:
  """Lays out the rows of `csr` for `half_step` (see `Layout`).

  `segs_per_group` is `max(entries_per_group // width, segments of the longest row)` rounded up to
  a multiple of `segs_per_step`, so a row is never split across groups. Host memory
  O(nnz + n_rows * width) int32; device memory per group O(rows_per_group * k^2 +
  segs_per_step * width * k) floats.
  """
  lengths = csr.row_lengths().astype(np.int64)
  n_rows = len(lengths)
  segs = np.maximum(1, -(-lengths // width))
  spg = int(max(entries_per_group // width, segs.max() if n_rows else 1))
  segs_per_step = min(segs_per_step, spg)
  spg = -(-spg // segs_per_step) * segs_per_step
  # Greedy packing of consecutive rows into groups.
  group_of = np.empty(n_rows, np.int64)
  g, rows_in, segs_in = 0, 0, 0
  for r in range(n_rows):
    if rows_in == rows_per_group or segs_in + segs[r] > spg:
      g, rows_in, segs_in = g + 1, 0, 0
    group_of[r] = g
    rows_in += 1
    segs_in += segs[r]
  n_groups = g + 1 if n_rows else 0
  first_row = np.searchsorted(group_of, np.arange(n_groups))
  local_row = np.arange(n_rows) - first_row[group_of]
  group_rows = np.full((n_groups, rows_per_group), -1, np.int32)
  group_rows[group_of, local_row] = np.arange(n_rows)
  # Every segment: its row, its index within the row, its group and slot within the group.
  seg_first = np.cumsum(segs) - segs
  srow = np.repeat(np.arange(n_rows), segs)
  sk = np.arange(len(srow)) - seg_first[srow]
  sg = group_of[srow]
  sl = seg_first[srow] - seg_first[first_row[sg]] + sk
  e0 = sk * width
  pos = np.arange(width)[None, :] < np.clip(lengths[srow] - e0, 0, width)[:, None]
  flat = (csr.indptr[srow][:, None] + e0[:, None] + np.arange(width)[None, :])[pos]
  block_items = np.zeros((len(srow), width), np.int32)
  block_items[pos] = csr.indices[flat]
  seg_items = np.zeros((n_groups, spg, width), np.int32)
  seg_mask = np.zeros((n_groups, spg, width), np.float32)
  seg_row = np.full((n_groups, spg), rows_per_group, np.int32)
  seg_items[sg, sl] = block_items
  seg_mask[sg, sl] = pos
  seg_row[sg, sl] = local_row[srow]
  return Layout(seg_items, seg_mask, seg_row, group_rows, n_rows, segs_per_step)


def _transpose(csr: CSR) -> CSR:
  """The item x user CSR of a user x item CSR."""
  xt = csr.to_scipy().T.tocsr()
  xt.sort_indices()
  return CSR(indptr=xt.indptr.astype(np.int64), indices=xt.indices.astype(np.int32),
             n_items=csr.n_rows)


# --------------------------------------------------------------------------------------------------
# Device-side solves.
# --------------------------------------------------------------------------------------------------


def _spd_solve(a, b):
  """Solves `a x = b` for a batch of SPD `a` `[..., k, k]`, `b` `[..., k]` by Cholesky."""
  factor = jax.scipy.linalg.cho_factor(a, lower=True)
  return jax.scipy.linalg.cho_solve(factor, b[..., None])[..., 0]


@functools.partial(jax.jit, static_argnames=("n_rows", "segs_per_step"))
def _half_step(fixed, lam, alpha, seg_items, seg_mask, seg_row, group_rows, *, n_rows,
               segs_per_step):
  """Exact ridge solves of every row of one side given the other side's `fixed` factors."""
  k = fixed.shape[1]
  gram_lam = jnp.dot(fixed.T, fixed, precision=_HI) + lam * jnp.eye(k, dtype=jnp.float32)
  n_groups, spg, width = seg_items.shape
  g_rows = group_rows.shape[1]
  n_steps = spg // segs_per_step

  def group(args):
    items, mask, rows = args
    items = items.reshape(n_steps, segs_per_step, width)
    mask = mask.reshape(n_steps, segs_per_step, width)
    rows = rows.reshape(n_steps, segs_per_step)

    def body(carry, a):
      acc, rhs = carry
      it, m, r = a
      fg = fixed[it] * m[..., None]  # [S, W, k]
      acc = acc.at[r].add(jnp.einsum("swk,swm->skm", fg, fg, precision=_HI), mode="drop")
      rhs = rhs.at[r].add(jnp.sum(fg, axis=1), mode="drop")
      return (acc, rhs), None

    init = (jnp.zeros((g_rows, k, k), jnp.float32), jnp.zeros((g_rows, k), jnp.float32))
    (acc, rhs), _ = jax.lax.scan(body, init, (items, mask, rows))
    return _spd_solve(gram_lam + alpha * acc, (1.0 + alpha) * rhs)

  sol = jax.lax.map(group, (seg_items, seg_mask, seg_row))  # [n_groups, G, k]
  r = group_rows.reshape(-1)
  out = jnp.zeros((n_rows, k), jnp.float32)
  return out.at[jnp.where(r >= 0, r, n_rows)].set(sol.reshape(-1, k), mode="drop")


def half_step(lay: Layout, fixed, alpha: float, lam: float) -> jax.Array:
  """One exact ALS half-step: every row's factor given the other side's `fixed` factors.

  Args:
    lay: `layout` of the side being solved (users: the train CSR; items: its transpose).
    fixed: `[n_other, k]` factors of the other side.
    alpha, lam: confidence slope and L2 weight.

  Returns:
    float32 `[n_rows, k]` (a row without any entry gets 0, its exact solution).
  """
  return _half_step(jnp.asarray(fixed, jnp.float32), jnp.float32(lam), jnp.float32(alpha),
                    lay.seg_items, lay.seg_mask, lay.seg_row, lay.group_rows, n_rows=lay.n_rows,
                    segs_per_step=lay.segs_per_step)


def objective(train: CSR, user_factors, item_factors, alpha: float, lam: float) -> float:
  """The WMF objective L(U, V) (module docstring), in float64 on the host.

  Uses `sum_ui c_ui (p_ui - s_ui)^2 = sum_ui s_ui^2 + sum_{x_ui=1} [(1+alpha)(1 - s_ui)^2 - s_ui^2]`
  with `sum_ui s_ui^2 = tr((U^T U)(V^T V))`, so it costs O(nnz k + (n + M) k^2).
  """
  u = np.asarray(user_factors, np.float64)
  v = np.asarray(item_factors, np.float64)
  rows = np.repeat(np.arange(train.n_rows), train.row_lengths())
  s = np.einsum("ek,ek->e", u[rows], v[train.indices])
  total = np.sum((u.T @ u) * (v.T @ v))
  total += np.sum((1.0 + alpha) * (1.0 - s)**2 - s**2)
  return float(total + lam * (np.sum(u * u) + np.sum(v * v)))


class ALS:
  """The state of an ALS fit, for tests and callers that want the user factors or the objective.

  `ALS(train, k, alpha, lam, seed)` initialises V ~ N(0, 1/k); `step()` runs a user half-step
  then an item half-step; `.user_factors` / `.item_factors` hold the current factors.
  """

  def __init__(self, train: CSR, k: int = DEFAULT_K, alpha: float = DEFAULT_ALPHA,
               lam: float = DEFAULT_LAM, seed: int = 0, **layout_kwargs):
    if not lam > 0 or alpha < 0:
      raise ValueError(f"WMF needs lam > 0 and alpha >= 0, got lam={lam}, alpha={alpha}")
    self.train, self.k, self.alpha, self.lam = train, int(k), float(alpha), float(lam)
    self.users = layout(train, **layout_kwargs).to_device()
    self.items = layout(_transpose(train), **layout_kwargs).to_device()
    key = jax.random.PRNGKey(seed)
    self.item_factors = (jax.random.normal(key, (train.n_items, self.k), jnp.float32)
                         / math.sqrt(self.k))
    self.user_factors = None

  def update_users(self):
    self.user_factors = half_step(self.users, self.item_factors, self.alpha, self.lam)

  def update_items(self):
    self.item_factors = half_step(self.items, self.user_factors, self.alpha, self.lam)

  def step(self):
    self.update_users()
    self.update_items()

  def objective(self) -> float:
    return objective(self.train, self.user_factors, self.item_factors, self.alpha, self.lam)


def fit(train: CSR, k: int = DEFAULT_K, alpha: float = DEFAULT_ALPHA, lam: float = DEFAULT_LAM,
        iters: int = DEFAULT_ITERS, seed: int = 0, log=None) -> dict:
  """Fits WMF on the training users by ALS and keeps the item factors (strong generalisation).

  Args:
    train: training users' histories, binary `[n_users, M]` CSR.
    k: latent dimension (Liang et al.: 100 or 200).
    alpha: confidence slope, `c = 1 + alpha x` (Liang et al.'s weight on the ones minus 1).
    lam: L2 weight on both factor matrices (unnormalised objective, module docstring).
    iters: ALS iterations (each a user then an item half-step; starts from random V).
    seed: PRNG seed of V's initialisation.
    log: optional `print`-like callable; gets the objective after each iteration (costs a host
      copy and O(nnz k) per iteration).

  Returns:
    `{"item_factors": float32 [M, k], "alpha": float32 [], "lam": float32 []}` (a pytree of device
    arrays; `scores` needs alpha and lam for the fold-in).

  Complexity: per iteration O(nnz k^2 + (n_users + M) k^3) flops; device memory O((n_users + M) k
  + rows_per_group k^2). Measured times: module docstring (~3.7 s per iteration on the 2-core CPU
  at ML-1M size, k = 100).
  """
  als = ALS(train, k=k, alpha=alpha, lam=lam, seed=seed)
  for it in range(int(iters)):
    als.step()
    if log is not None:
      log(f"wmf iter {it + 1}/{iters}  objective {als.objective():.6g}")
  return {"item_factors": als.item_factors, "alpha": jnp.float32(alpha), "lam": jnp.float32(lam)}


def _item_chunks(m: int, max_chunk: int) -> tuple[int, int]:
  n_chunks = max(1, -(-m // max_chunk))
  return n_chunks, -(-m // n_chunks)


def fold_in(item_factors, x_dense, alpha, lam, max_chunk: int = 1024) -> jax.Array:
  """Held-out users' factors: one exact ALS user half-step from their fold-in rows, V fixed.

  Solves `(V^T V + alpha V^T diag(x_u) V + lam I) u = (1 + alpha) V^T x_u` for each row.

  Args:
    item_factors: `[M, k]` V from `fit`.
    x_dense: 0/1 `[B, M]` fold-in rows (binary; other values are used as given in c and p).
    alpha, lam: as in `fit`.
    max_chunk: items per step of the scan that accumulates `V^T diag(x_u) V` (memory
      O(B * chunk * k)).

  Returns:
    float32 `[B, k]`.
  """
  v = jnp.asarray(item_factors, jnp.float32)
  x = jnp.asarray(x_dense).astype(jnp.float32)
  m, k = v.shape
  b = x.shape[0]
  n_chunks, chunk = _item_chunks(m, max_chunk)
  pad = n_chunks * chunk - m
  vp = jnp.pad(v, ((0, pad), (0, 0))).reshape(n_chunks, chunk, k)
  xp = jnp.pad(x, ((0, 0), (0, pad))).reshape(b, n_chunks, chunk).transpose(1, 0, 2)

  def body(acc, args):
    xc, vc = args
    return acc + jnp.einsum("bc,ck,cl->bkl", xc, vc, vc, precision=_HI), None

  xvv, _ = jax.lax.scan(body, jnp.zeros((b, k, k), jnp.float32), (xp, vp))
  a = (jnp.dot(v.T, v, precision=_HI) + lam * jnp.eye(k, dtype=jnp.float32))[None] + alpha * xvv
  rhs = (1.0 + alpha) * jnp.dot(x, v, precision=_HI)
  return _spd_solve(a, rhs)


def scores(params, fold_in_dense) -> jax.Array:
  """WMF scores `u V^T` for a batch of held-out users, u folded in from the batch (jittable).

  Args:
    params: `fit`'s dict.
    fold_in_dense: 0/1 `[B, M]` fold-in batch (the caller masks fold-in items to -inf afterwards).

  Returns:
    float32 `[B, M]`.

  Complexity: O(B M k^2 + B k^3) flops, O(B k^2 + B * 1024 * k) memory.
  """
  v = jnp.asarray(params["item_factors"], jnp.float32)
  u = fold_in(v, fold_in_dense, params["alpha"], params["lam"])
  return jnp.dot(u, v.T, precision=_HI)
