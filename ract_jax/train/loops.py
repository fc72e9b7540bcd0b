"""Whole epochs as single jitted programs: a `lax.scan` over the steps of a per-device step.

The epoch's user order is drawn on device from (seed, epoch); the batch of every step is built on
device from the replicated CSR. One dispatch per epoch, no host round trip inside it, one compile
per stage (the trace counter `traces` lets tests check that).
"""

from __future__ import annotations

import collections
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from ract_jax.device import batches, parallel

ORDER_STREAM = 0x5EED  # fold_in tag separating the user-order draw from the per-step draws.

traces = collections.Counter()  # name -> number of times the epoch function was traced.


def make_epoch(name: str, step_fn: Callable, mesh, n_rows: int, batch_size: int):
  """Jitted `epoch(state, csr, epoch_key) -> (state, per_step_sums)`.

  Args:
    name: a label for the trace counter.
    step_fn: per-device `step(state, csr, users [B_local], key) -> (state, sums)`; `sums` is a dict
      of device-global scalars.
    mesh: the `data` mesh; the batch's users are split over it.
    n_rows: training users.
    batch_size: global users per step.

  Returns:
    The jitted epoch function; per-step sums come back stacked `[steps]` (tiny) so the host can
    name the first step that went non-finite. `state` is donated.
  """
  steps = -(-n_rows // batch_size)

  def per_device_epoch(carry, csr, key, order):
    def body(c, inp):
      i, users = inp
      return step_fn(c, csr, users, jax.random.fold_in(key, i))

    return jax.lax.scan(body, carry, (jnp.arange(steps), order))

  run = parallel.per_device(per_device_epoch, mesh, in_specs=(P(), P(), P(), P(None, parallel.AXIS)),
                            out_specs=(P(), P()))

  def epoch(carry, csr, key):
    traces[name] += 1
    order = batches.epoch_order(jax.random.fold_in(key, ORDER_STREAM), n_rows, batch_size)
    return run(carry, csr, key, order)

  return jax.jit(epoch, donate_argnums=0)


@jax.jit
def all_finite(tree) -> jax.Array:
  """True when every leaf of `tree` is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)
