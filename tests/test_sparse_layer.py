"""The sparse first layer equals the dense matmul, forward and gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ract_jax.actors.sparse_layer import sparse_rows_matmul


def _problem(cap, n, chunk_rows=5, m=50, h=7, seed=0):
  rng = np.random.default_rng(seed)
  seg = np.sort(rng.integers(0, chunk_rows, n)).astype(np.int32)
  item = rng.integers(0, m, n).astype(np.int32)
  vals = rng.normal(size=n).astype(np.float32)
  vals[::4] = 0.0  # Dropped entries inside the real range.
  s, i, v = (np.zeros(cap, np.int32), np.zeros(cap, np.int32), np.zeros(cap, np.float32))
  s[:n], i[:n], v[:n] = seg, item, vals
  x = np.zeros((chunk_rows, m), np.float64)
  np.add.at(x, (seg, item), vals)
  w = jnp.asarray(rng.normal(size=(m, h)), jnp.float32)
  return s, i, v, w, x.astype(np.float32)


@pytest.mark.parametrize("cap,n,chunk", [(64, 37, 16), (64, 64, 16), (50, 33, 16), (64, 0, 16),
                                         (40, 39, 128)])
def test_matches_dense(cap, n, chunk):
  s, i, v, w, x = _problem(cap, n)
  out = jax.jit(sparse_rows_matmul, static_argnums=(4, 5))(s, i, v, w, x.shape[0], chunk)
  np.testing.assert_allclose(out, x @ np.asarray(w), atol=1e-5)

  f = lambda w: jnp.sum(jnp.sin(sparse_rows_matmul(s, i, v, w, x.shape[0], chunk)))
  g = lambda w: jnp.sum(jnp.sin(jnp.asarray(x) @ w))
  np.testing.assert_allclose(jax.jit(jax.grad(f))(w), jax.grad(g)(w), atol=1e-5)


def test_last_entry_in_a_later_chunk_is_not_skipped():
  # All entries of the first chunk dropped (value 0), a real one in the third chunk.
  cap, chunk = 48, 16
  s, i, v = np.zeros(cap, np.int32), np.zeros(cap, np.int32), np.zeros(cap, np.float32)
  s[40], i[40], v[40] = 2, 3, 1.5
  w = jnp.arange(10 * 4, dtype=jnp.float32).reshape(10, 4)
  out = sparse_rows_matmul(s, i, v, w, 4, chunk)
  np.testing.assert_allclose(out[2], 1.5 * np.asarray(w[3]))
  assert float(np.abs(np.asarray(out)[[0, 1, 3]]).sum()) == 0.0


def test_dropped_entries_change_no_bit():
  # The same non-zero entries with and without zeros between them (the input mask's dropped
  # entries, skipped by the compaction): forward and dW equal exactly, across chunk boundaries.
  s, i, v, w, x = _problem(64, 60)
  keep = v != 0
  n = int(keep.sum())
  s2, i2, v2 = (np.zeros_like(a) for a in (s, i, v))
  s2[:n], i2[:n], v2[:n] = s[keep], i[keep], v[keep]
  g = jnp.asarray(np.random.default_rng(1).normal(size=(x.shape[0], w.shape[1])), jnp.float32)
  outs = [jax.vjp(lambda w: sparse_rows_matmul(a, b, c, w, x.shape[0], 8), w)
          for a, b, c in ((s, i, v), (s2, i2, v2))]
  np.testing.assert_array_equal(outs[0][0], outs[1][0])
  np.testing.assert_array_equal(outs[0][1](g)[0], outs[1][1](g)[0])
