"""Device-side batch building from the CSR: entries, dense rows, masks, schedules."""

import jax
import jax.numpy as jnp
import numpy as np

from ract_jax.device import batches, parallel
from ract_jax.data.csr import CSR


def _csr(rows, m):
  indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
  return CSR(indptr, np.concatenate(rows).astype(np.int32), m)


ROWS = [[3, 1, 4], [1], [5, 9, 2, 6], [0, 7]]


def test_entries_and_dense_rows():
  csr = _csr(ROWS, 10)
  dev = batches.to_device_csr(csr)
  users = jnp.array([2, -1, 0], jnp.int32)
  cap = batches.entry_capacity(csr, 3, multiple=8)
  assert cap == 16  # 4 + 3 + 2 = 9 -> 16.
  e = jax.jit(batches.gather_entries, static_argnums=2)(dev, users, cap)
  n = int(e.total)
  assert n == 7
  np.testing.assert_array_equal(e.counts, [4, 0, 3])
  np.testing.assert_array_equal(e.seg[:n], [0, 0, 0, 0, 2, 2, 2])
  np.testing.assert_array_equal(e.item[:n], [5, 9, 2, 6, 3, 1, 4])
  assert not bool(e.valid[n:].any())
  np.testing.assert_array_equal(e.user_valid, [True, False, True])
  x = np.asarray(batches.dense_rows(e, 10))
  want = np.zeros((3, 10))
  want[0, [5, 9, 2, 6]] = 1
  want[2, [3, 1, 4]] = 1
  np.testing.assert_array_equal(x, want)


def test_keep_mask_depends_on_user_and_item_not_position():
  csr = _csr(ROWS, 10)
  dev = batches.to_device_csr(csr)
  key = jax.random.PRNGKey(3)
  e1 = batches.gather_entries(dev, jnp.array([0, 2], jnp.int32), 16)
  e2 = batches.gather_entries(dev, jnp.array([2, -1, 0], jnp.int32), 16)
  u1, u2 = batches.entry_uniform(key, e1), batches.entry_uniform(key, e2)
  # User 0's entries come first in e1 and last in e2: same draws.
  np.testing.assert_array_equal(u1[:3], u2[4:7])
  np.testing.assert_array_equal(u1[3:7], u2[:4])
  assert not np.array_equal(u1, batches.entry_uniform(jax.random.PRNGKey(4), e1))


def test_keep_mask_rate():
  rows = [list(range(200))] * 50
  dev = batches.to_device_csr(_csr(rows, 200))
  e = batches.gather_entries(dev, jnp.arange(50, dtype=jnp.int32), 50 * 200)
  kept = batches.keep_mask(jax.random.PRNGKey(0), e, 0.5)
  # Same item for different users: independent draws; overall rate ~ 0.5.
  assert abs(float(kept.mean()) - 0.5) < 0.01
  assert not np.array_equal(np.asarray(kept[:200]), np.asarray(kept[200:400]))


def test_epoch_order_is_a_padded_permutation():
  order = np.asarray(batches.epoch_order(jax.random.PRNGKey(0), 23, 5))
  assert order.shape == (5, 5)
  flat = order.reshape(-1)
  assert sorted(flat[flat >= 0].tolist()) == list(range(23))
  assert (flat[23:] == -1).all()
  other = np.asarray(batches.epoch_order(jax.random.PRNGKey(1), 23, 5))
  assert not np.array_equal(order, other)


def test_any_batch_on_any_device_count():
  class Mesh:  # Only `.devices.size` is read.
    def __init__(self, n):
      self.devices = np.zeros(n)

  assert [parallel.local_batch_size(500, Mesh(n)) for n in (1, 3, 8, 16)] == [500, 167, 63, 32]
  assert parallel.padded_batch_size(500, Mesh(16)) == 512
  assert parallel.padded_batch_size(3, Mesh(4)) == 4
  with np.testing.assert_raises(ValueError):
    parallel.local_batch_size(0, Mesh(2))
  order = batches.epoch_order(jax.random.PRNGKey(0), 10, 4)  # [3, 4], 2 padding ids at the end.
  wide = np.asarray(batches.pad_columns(order, 6))
  assert wide.shape == (3, 6) and (wide[:, 4:] == -1).all()
  np.testing.assert_array_equal(wide[:, :4], np.asarray(order))
  assert batches.pad_columns(order, 4) is order
