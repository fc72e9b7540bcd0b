"""Data parallelism: a 1-D `data` mesh over all devices and pmap-style per-device functions.

Per-device code runs under `jax.shard_map` with `check_vma=False`, i.e. pmap's programming model:
gradients computed inside are local to the device and are combined with an explicit `lax.psum` of
(globally normalised) losses. The same code runs on 1 device, N local devices and several hosts
(`jax.distributed.initialize()` first; every host then holds the full interaction CSR, replicated).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

AXIS = "data"


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh named `data` over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (AXIS,), axis_types=(AxisType.Auto,), devices=devices)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put_replicated(tree, mesh):
  """Places a pytree of host arrays on every device (each process passes the same full data)."""
  sharding = replicated(mesh)

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_process_local_data(sharding, x, x.shape)

  return jax.tree.map(put, tree)


def per_device(fn, mesh, in_specs, out_specs):
  """`fn` as per-device code over the `data` axis (pmap semantics: explicit collectives)."""
  return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)


def local_batch_size(global_batch: int, mesh) -> int:
  n = mesh.devices.size
  if global_batch % n:
    raise ValueError(f"config.batch_size={global_batch} is not divisible by the {n} devices; "
                     f"use a multiple of {n}.")
  return global_batch // n
