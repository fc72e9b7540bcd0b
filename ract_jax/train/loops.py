"""Whole epochs as a few dispatches of one jitted chunk: a `lax.scan` over steps of a per-device step.

The epoch's user order is drawn on device from (seed, epoch); the batch of every step is built on
device from the replicated CSR. An epoch runs as `chunks` dispatches of the same compiled program
(one compile per stage; the trace counter `traces` lets tests check that), each scanning
`chunk_steps` consecutive steps; the step counter stays on device, so nothing is copied from or to
the host inside an epoch. Between chunks the host can report progress (`on_chunk`). The chunked
epoch computes exactly what one scan over all steps does (same step function, same keys, same
order): states are bit-identical whatever the number of chunks (tests/test_loops.py).
"""

from __future__ import annotations

import collections
import time
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from ract_jax.device import batches, parallel

ORDER_STREAM = 0x5EED  # fold_in tag separating the user-order draw from the per-step draws.
AUTO_MAX_CHUNKS = 16  # epoch_chunks=0 (auto): at most 16 chunks ...
AUTO_MIN_CHUNK_STEPS = 16  # ... of at least 16 steps, so the per-chunk dispatch stays negligible.

traces = collections.Counter()  # name -> number of times the epoch's chunk program was traced.


def chunk_plan(steps: int, chunks: int) -> tuple[int, int]:
  """(number of chunks, steps per chunk) for an epoch of `steps` steps split into ~`chunks`.

  Args:
    steps: steps in the epoch (>= 1).
    chunks: wanted chunks; 0 = auto (up to `AUTO_MAX_CHUNKS` of >= `AUTO_MIN_CHUNK_STEPS` steps,
      i.e. short epochs run as one dispatch); clipped to [1, steps].

  Returns:
    (C, L) with C * L >= steps > (C - 1) * L: the last chunk's `C * L - steps` extra steps are
    skipped on device (a `lax.cond`), so every chunk is the same compiled program.
  """
  if chunks < 0:
    raise ValueError(f"config.progress.epoch_chunks={chunks} must be >= 0 (0 = auto).")
  if chunks == 0:
    chunks = min(AUTO_MAX_CHUNKS, steps // AUTO_MIN_CHUNK_STEPS)
  chunks = max(1, min(chunks, steps))
  length = -(-steps // chunks)
  return -(-steps // length), length


def chunks_for(progress_cfg) -> int:
  """`config.progress.epoch_chunks`, with auto (0) meaning one chunk when no progress is printed."""
  if progress_cfg.epoch_chunks == 0 and not progress_cfg.seconds:
    return 1
  return progress_cfg.epoch_chunks


class Epoch:
  """A stage's epoch: `epoch(state, csr, epoch_key, on_chunk=None) -> (state, per_step_sums)`.

  Args:
    name: a label for the trace counter.
    step_fn: per-device `step(state, csr, users [B_local], key) -> (state, sums)`; `sums` is a dict
      of device-global scalars.
    mesh: the `data` mesh; the batch's users are split over it.
    n_rows: training users.
    batch_size: global (real) users per step; padded with masked rows to a multiple of the
      device count (`parallel.padded_batch_size`), so any batch size runs on any mesh.
    chunks: dispatches per epoch (`chunk_plan`; 1 = one scan over the whole epoch, 0 = auto).

  Calling it returns the new state (`state` is donated) and the per-step sums stacked `[steps]`
  (tiny, on device) so the host can name the first step that went non-finite. `on_chunk(done,
  sums)`, if given, is called after each chunk is dispatched, with the steps dispatched so far and
  that chunk's (still on device) per-step sums.
  """

  def __init__(self, name: str, step_fn: Callable, mesh, n_rows: int, batch_size: int,
               chunks: int = 1):
    self.name = name
    self.steps = steps = -(-n_rows // batch_size)
    self.chunks, self.chunk_steps = n_chunks, length = chunk_plan(steps, chunks)
    total = n_chunks * length
    width = parallel.padded_batch_size(batch_size, mesh)

    def prepare(key):
      order = batches.epoch_order(jax.random.fold_in(key, ORDER_STREAM), n_rows, batch_size)
      order = batches.pad_columns(order, width)
      if total > steps:  # Rows of the skipped steps of the last chunk.
        order = jnp.concatenate([order, jnp.full((total - steps, width), -1, jnp.int32)])
      return order, jnp.int32(0)

    def per_device_chunk(carry, csr, key, order, first):
      def step(c, i, users):
        return step_fn(c, csr, users, jax.random.fold_in(key, i))

      def body(c, inp):
        i, users = inp
        if total == steps:
          return step(c, i, users)
        sums = jax.eval_shape(step, c, i, users)[1]
        return jax.lax.cond(i < steps, step, lambda c_, *_: (c_, jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), sums)), c, i, users)

      return jax.lax.scan(body, carry, (first + jnp.arange(length, dtype=jnp.int32), order))

    run = parallel.per_device(per_device_chunk, mesh,
                              in_specs=(P(), P(), P(), P(None, parallel.AXIS), P()),
                              out_specs=(P(), P()))

    def chunk(carry, csr, key, order, first):
      traces[name] += 1
      part = jax.lax.dynamic_slice_in_dim(order, first, length, axis=0)
      carry, sums = run(carry, csr, key, part, first)
      return carry, sums, first + length

    # Replicated like the chunk's own outputs, so every chunk call hits one compiled program.
    self._prepare = jax.jit(prepare, out_shardings=parallel.replicated(mesh))
    self._chunk = jax.jit(chunk, donate_argnums=0)
    self._compiled = False

  def compile(self, state, csr, key) -> float:
    """Compiles the epoch's programs for these arguments; returns the seconds it took (0 when
    already compiled), so that epoch timings and ETAs can exclude compilation."""
    if self._compiled:
      return 0.0
    t0 = time.perf_counter()
    order, first = self._prepare(key)
    self._chunk.lower(state, csr, key, order, first).compile()
    self._compiled = True
    return time.perf_counter() - t0

  def __call__(self, state, csr, key, on_chunk: Callable | None = None):
    self.compile(state, csr, key)
    order, first = self._prepare(key)
    parts = []
    for c in range(self.chunks):
      state, sums, first = self._chunk(state, csr, key, order, first)
      parts.append(sums)
      if on_chunk is not None:
        on_chunk(min((c + 1) * self.chunk_steps, self.steps), sums)
    if len(parts) > 1:
      sums = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
    if self.chunks * self.chunk_steps > self.steps:
      sums = jax.tree.map(lambda x: x[:self.steps], sums)
    return state, sums


def make_epoch(name: str, step_fn: Callable, mesh, n_rows: int, batch_size: int,
               chunks: int = 1) -> Epoch:
  """The epoch program of a stage (see `Epoch`)."""
  return Epoch(name, step_fn, mesh, n_rows, batch_size, chunks)


@jax.jit
def all_finite(tree) -> jax.Array:
  """True when every leaf of `tree` is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)
