"""The cost of splitting an epoch into chunks (train/loops.py), measured in one run.

  python experiments/bench_chunks.py                       # ML-1M-implicit (../shared), stage 1
  python experiments/bench_chunks.py --shape=ml20m --steps=40

Times whole stage-1 epochs run as 1 dispatch and as C dispatches (default: one step per chunk, the
worst case), interleaved, with the progress callback on (it waits for the chunk before the last
one, as in training), and reports the median epoch times and the overhead per extra chunk.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from experiments import bench_epoch  # noqa: E402
from ract_jax import config_base as base  # noqa: E402
from ract_jax.actors import sparse_layer  # noqa: E402
from ract_jax.device import batches, parallel  # noqa: E402
from ract_jax.train import loops, records, state as state_lib, steps  # noqa: E402


def _data(shape: str, n_steps: int, batch_size: int):
  if shape == "ml1m":
    from ract_jax import data as data_lib
    cfg = base.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "configs",
                                 "ml1m_implicit.py"))
    data = data_lib.load_dataset(cfg.data, log=lambda *a: None)
    return data.train, data.train.n_rows
  n_users, n_items, nnz = bench_epoch.SHAPES[shape]
  return bench_epoch.synthetic_csr(n_users, n_items, nnz), min(n_users, n_steps * batch_size)


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--shape", default="ml1m", help="ml1m, ml20m or msd")
  ap.add_argument("--steps", type=int, default=20, help="steps per synthetic epoch")
  ap.add_argument("--chunks", type=int, default=0, help="chunks to compare with 1 (0: one per step)")
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--no-progress", action="store_true", help="no progress callback (no syncs)")
  args = ap.parse_args()
  config = base.get_base_config()
  csr, n_rows = _data(args.shape, args.steps, config.batch_size)
  mesh = parallel.make_mesh()
  local = parallel.local_batch_size(config.batch_size, mesh)
  shape = steps.BatchShape(n_items=csr.n_items, batch_size=config.batch_size,
                           cap=batches.entry_capacity(csr, local, multiple=sparse_layer.DEFAULT_CHUNK))
  dev = batches.to_device_csr(csr, parallel.replicated(mesh))
  n_steps = -(-n_rows // config.batch_size)
  step = steps.make_actor_step(config.actor, shape, n_steps)
  chunked = args.chunks or n_steps
  programs = {c: loops.make_epoch(f"bench-{c}", step, mesh, n_rows, config.batch_size, c)
              for c in (1, chunked)}
  init = jax.jit(lambda: state_lib.create(jax.random.PRNGKey(0), config.actor, config.critic,
                                          config.ac, csr.n_items),
                 out_shardings=parallel.replicated(mesh))
  states = {c: init() for c in programs}
  compile_s = {c: p.compile(states[c], dev, jax.random.PRNGKey(1)) for c, p in programs.items()}
  times = {c: [] for c in programs}
  for r in range(args.repeats + 1):
    for c, p in programs.items():
      progress = None if args.no_progress else records.ChunkProgress(
          lambda *_: None, "", n_rows, p.steps, config.batch_size, every=1e9)
      t = time.perf_counter()
      states[c], sums = p(states[c], dev, jax.random.PRNGKey(2 + r), progress)
      jax.block_until_ready(sums)
      if r:  # The first round warms up.
        times[c].append(time.perf_counter() - t)
  one, many = (float(np.median(times[c])) for c in (1, chunked))
  n = programs[chunked].chunks
  print(f"{args.shape}: {n_rows} users, {n_steps} steps of {config.batch_size}, "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), progress callback "
        f"{'off' if args.no_progress else 'on'}")
  print(f"compile: 1 chunk {compile_s[1]:.1f} s, {n} chunks {compile_s[chunked]:.1f} s")
  print(f"epoch (median of {args.repeats}): 1 chunk {one:.3f} s, {n} chunks {many:.3f} s "
        f"({100 * (many / one - 1):+.1f}%), {1000 * (many - one) / max(n - 1, 1):+.1f} ms per "
        f"extra chunk; all: 1 chunk {np.round(times[1], 3).tolist()}, {n} chunks "
        f"{np.round(times[chunked], 3).tolist()}")


if __name__ == "__main__":
  main()
