"""Device-side batches: the interaction CSR lives on the device and every batch is built inside jit.

A batch of B users is represented by its flat list of (row-in-batch, item) entries, padded to a static
capacity `cap` (the largest number of entries any B users can have). From it the training step builds
what it needs without a host round trip: the dense `[B, M]` 0/1 matrix (a scatter), per-entry input
values for the sparse first layer, and per-entry dropout draws.

Random draws (the input mask b, the VAE's epsilon) are keyed by the *global* user id and item, not by
the device or the position in the batch, so one device and N devices draw exactly the same numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from ract_jax.data.csr import CSR


class DeviceCSR(NamedTuple):
  """A CSR matrix as device arrays (replicated on every device).

  indptr: int32 `[n_rows + 1]`; indices: int32 `[nnz]`.
  """

  indptr: jax.Array
  indices: jax.Array


class Entries(NamedTuple):
  """The flat (row, item) entries of a batch of users, padded to a static capacity.

  seg: int32 `[cap]` row in the batch of each entry (0 for padding).
  item: int32 `[cap]` item index of each entry (0 for padding).
  valid: bool `[cap]` real entry (False for padding).
  counts: int32 `[B]` entries per row (0 for a padding row).
  users: int32 `[B]` the global row id of each batch row (-1 for a padding row).
  """

  seg: jax.Array
  item: jax.Array
  valid: jax.Array
  counts: jax.Array
  users: jax.Array

  @property
  def total(self) -> jax.Array:
    """Number of real entries (a traced scalar)."""
    return jnp.sum(self.counts)

  @property
  def user_valid(self) -> jax.Array:
    """bool `[B]`: real users (False for the padding of a partial last batch)."""
    return self.users >= 0


def to_device_csr(csr: CSR, sharding=None) -> DeviceCSR:
  """Copies a host CSR to the device(s) once, as int32 arrays (replicated if `sharding` given)."""
  if csr.nnz >= 2**31:
    raise ValueError(f"{csr.nnz} interactions exceed int32 indexing; shard the data by users.")
  arrays = (np.asarray(csr.indptr, np.int32), np.asarray(csr.indices, np.int32))
  if sharding is None:
    return DeviceCSR(*(jax.device_put(a) for a in arrays))
  return DeviceCSR(*(jax.make_array_from_process_local_data(sharding, a, a.shape)
                     for a in arrays))


def entry_capacity(csr: CSR, batch_size: int, multiple: int = 1024) -> int:
  """A static bound on the entries of any `batch_size` rows: the sum of the largest row lengths.

  Rounded up to `multiple` (at least `multiple`) so similar datasets share compiled shapes.
  """
  lengths = np.sort(csr.row_lengths())[::-1]
  cap = int(lengths[:batch_size].sum())
  return max(multiple, -(-cap // multiple) * multiple)


def gather_entries(csr: DeviceCSR, users: jax.Array, cap: int) -> Entries:
  """Builds the flat entries of the rows `users` (int32 `[B]`, -1 = padding row) inside jit.

  Entries keep each row's stored item order. `cap` must bound the batch's number of entries (see
  `entry_capacity`); the caller guarantees it, so nothing is truncated.
  """
  valid_user = users >= 0
  u = jnp.where(valid_user, users, 0)
  start = csr.indptr[u]
  counts = jnp.where(valid_user, csr.indptr[u + 1] - start, 0).astype(jnp.int32)
  b = users.shape[0]
  seg = jnp.repeat(jnp.arange(b, dtype=jnp.int32), counts, total_repeat_length=cap)
  offsets = jnp.cumsum(counts) - counts
  j = jnp.arange(cap, dtype=jnp.int32)
  valid = j < jnp.sum(counts)
  pos = jnp.where(valid, start[seg] + j - offsets[seg], 0)
  item = jnp.where(valid, csr.indices[pos], 0)
  seg = jnp.where(valid, seg, 0)
  return Entries(seg=seg, item=item, valid=valid, counts=counts, users=users)


def dense_rows(entries: Entries, n_items: int, values=None, dtype=jnp.float32) -> jax.Array:
  """Scatters entries into a dense `[B, n_items]` matrix (1 where an entry is, or `values[cap]`)."""
  b = entries.counts.shape[0]
  col = jnp.where(entries.valid, entries.item, n_items)  # Out of range: dropped.
  vals = jnp.ones(entries.item.shape, dtype) if values is None else values.astype(dtype)
  return jnp.zeros((b, n_items), dtype).at[entries.seg, col].set(vals, mode="drop")


def entry_uniform(key: jax.Array, entries: Entries) -> jax.Array:
  """A uniform [0, 1) float32 `[cap]` per (global user, item) entry for this key.

  Counter-based (threefry on (user, item)), so the draw does not depend on where the entry sits in
  the batch or on which device it is.
  """
  users = entries.users[entries.seg].astype(jnp.uint32)
  items = entries.item.astype(jnp.uint32)
  bits = threefry_2x32(jax.random.key_data(key), jnp.concatenate([users, items]))
  bits = bits[: users.shape[0]]
  return (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def keep_mask(key: jax.Array, entries: Entries, keep_prob: float) -> jax.Array:
  """The Bernoulli(keep_prob) input mask b (eq. 2) on each real entry, bool `[cap]`."""
  return (entry_uniform(key, entries) < keep_prob) & entries.valid


def user_normal(key: jax.Array, users: jax.Array, dim: int) -> jax.Array:
  """Standard normal `[B, dim]` draws keyed by global user id (the VAE's epsilon)."""
  return jax.vmap(lambda u: jax.random.normal(jax.random.fold_in(key, u), (dim,)))(users)


def epoch_order(key: jax.Array, n_rows: int, batch_size: int) -> jax.Array:
  """A fresh permutation of `n_rows` users as an int32 `[steps, batch_size]` schedule.

  The last partial batch is padded with -1 (trained on, masked), as in Liang's notebook.
  """
  steps = -(-n_rows // batch_size)
  perm = jax.random.permutation(key, n_rows).astype(jnp.int32)
  pad = steps * batch_size - n_rows
  return jnp.concatenate([perm, jnp.full((pad,), -1, jnp.int32)]).reshape(steps, batch_size)


def pad_columns(order: jax.Array, width: int) -> jax.Array:
  """An int32 `[steps, B]` schedule widened to `[steps, width]` with padding rows (-1) at the end.

  Used to pad a global batch to a multiple of the device count (`parallel.padded_batch_size`):
  padding rows carry no entries and are masked out of every loss and sum.
  """
  extra = width - order.shape[1]
  if extra < 0:
    raise ValueError(f"cannot pad a batch of {order.shape[1]} users to {width}.")
  if extra == 0:
    return order
  return jnp.concatenate([order, jnp.full((order.shape[0], extra), -1, order.dtype)], axis=1)


def sequential_order(n_rows: int, batch_size: int) -> np.ndarray:
  """Rows 0..n_rows-1 in order as an int32 `[steps, batch_size]` schedule padded with -1."""
  steps = max(1, -(-n_rows // batch_size))
  out = np.full(steps * batch_size, -1, np.int32)
  out[:n_rows] = np.arange(n_rows, dtype=np.int32)
  return out.reshape(steps, batch_size)
