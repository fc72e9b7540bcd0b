"""The actors' first layer on sparse rows: `X @ W` without building `X`.

A user's input row has a handful of non-zeros among M items, so the first layer's dense matmul
(2·B·M·H FLOPs forward plus as much again for dW) is wasted work. Here the product is a gather of W's
rows plus a segment sum, and dW is a scatter-add, both over the batch's entries in chunks of a fixed
size: memory stays at `chunk x H` and the loop runs only over the non-zero entries of the batch (the
real ones the input mask kept).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

DEFAULT_CHUNK = 2048  # Measured on CPU: 8192-entry chunks fall out of cache (2x slower).


def _slice(a, c, chunk):
  return jax.lax.dynamic_slice_in_dim(a, c * chunk, chunk)


def sparse_rows_matmul(seg, item, values, w, n_rows: int, chunk: int = DEFAULT_CHUNK):
  """Computes `X @ w` for the sparse `X[seg[j], item[j]] = values[j]`.

  Args:
    seg: int32 `[cap]` row of each entry.
    item: int32 `[cap]` column of each entry.
    values: float `[cap]` value of each entry; 0 for padding and for entries dropped by the input
      mask, anywhere (they are skipped).
    w: float `[M, H]`.
    n_rows: static number of rows of X.
    chunk: static number of entries processed per loop iteration.

  Returns:
    float `[n_rows, H]`. Differentiable in `w` (only; the sparsity pattern and values are data).
  """
  chunk = min(chunk, values.shape[0])
  seg, item, values = _padded(seg, item, values, chunk)
  seg, item, values, n = _compacted(seg, item, values)
  return _matmul(seg, item, values, (n + chunk - 1) // chunk, w, n_rows, chunk)


def _padded(seg, item, values, chunk):
  """Pads the entries to a multiple of the chunk size (a no-op when `cap` already is one)."""
  pad = -values.shape[0] % chunk
  if pad:
    seg, item = (jnp.pad(a, (0, pad)) for a in (seg, item))
    values = jnp.pad(values, (0, pad))
  return seg, item, values


def _compacted(seg, item, values):
  """The non-zero entries moved to the front in their order (the rest zeroed), and their number.

  In training the input mask b drops about half of the real entries (eq. 2, keep_prob 0.5): the
  loops below then run over the kept ones only, half the chunks.
  """
  nz = values != 0
  cap = values.shape[0]
  to = jnp.where(nz, jnp.cumsum(nz, dtype=jnp.int32) - 1, cap)  # cap: out of range, dropped.
  moved = [jnp.zeros_like(a).at[to].set(a, mode="drop") for a in (seg, item, values)]
  return (*moved, jnp.sum(nz, dtype=jnp.int32))


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _matmul(seg, item, values, n_chunks, w, n_rows, chunk):
  return _forward(seg, item, values, n_chunks, w, n_rows, chunk)


def _forward(seg, item, values, n_chunks, w, n_rows, chunk):
  # Scatter-added straight into the output: each row's sum runs in entry order whatever the chunk
  # boundaries, so skipping the zero entries changes no bit.
  def body(c, out):
    s, i, v = _slice(seg, c, chunk), _slice(item, c, chunk), _slice(values, c, chunk)
    return out.at[s].add(w[i] * v[:, None].astype(w.dtype))

  out = jnp.zeros((n_rows, w.shape[1]), w.dtype)
  return jax.lax.fori_loop(0, n_chunks, body, out)


def _fwd(seg, item, values, n_chunks, w, n_rows, chunk):
  return _forward(seg, item, values, n_chunks, w, n_rows, chunk), (seg, item, values, n_chunks, w)


def _bwd(n_rows, chunk, res, g):
  seg, item, values, n_chunks, w = res

  def body(c, dw):
    s, i, v = _slice(seg, c, chunk), _slice(item, c, chunk), _slice(values, c, chunk)
    return dw.at[i].add(g[s] * v[:, None].astype(g.dtype))

  dw = jax.lax.fori_loop(0, n_chunks, body, jnp.zeros_like(w))
  return None, None, None, None, dw


_matmul.defvjp(_fwd, _bwd)
