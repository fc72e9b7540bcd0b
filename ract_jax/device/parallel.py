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
  """Users per device for a global batch of `global_batch` users: `ceil(global_batch / devices)`.

  Any batch size runs on any number of devices: the global batch is padded with masked rows
  (user id -1, as the last partial batch of an epoch already is) up to `local * devices`, so every
  step trains on the same real users, with the same loss normalisation (real users only), as on one
  device. E.g. the paper's 500 on 16 devices: 32 per device, 12 padding rows.

  Args:
    global_batch: real users per step (`config.batch_size` or `config.eval.batch_size`), >= 1.
    mesh: the `data` mesh.

  Returns:
    The per-device batch size (>= 1).
  """
  if global_batch < 1:
    raise ValueError(f"batch_size={global_batch} must be >= 1.")
  n = mesh.devices.size
  return -(-global_batch // n)


def padded_batch_size(global_batch: int, mesh) -> int:
  """The global batch padded to a multiple of the device count (see `local_batch_size`)."""
  return local_batch_size(global_batch, mesh) * mesh.devices.size
