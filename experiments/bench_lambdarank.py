"""LambdaRank's cost against its own arithmetic, in one run (the BUILD.md speed note).

Times, on a [500, 3500] batch with about 167 positives per user (ml-1m-implicit's shape):
  * `lambdarank_loss` forward (the critic's feature) and its gradient (the lambdas), for a few
    chunk sizes;
  * a bare `softplus(z) * sigmoid(z)` over [B, 167, M] dense pairs: the transcendentals every
    exact LambdaRank must evaluate once per (positive, item) pair, with no gathers or scatters.
If the loss is not much slower than the bare pairs, the gathers, scatters and loop are not the cost.

  python experiments/bench_lambdarank.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from ract_jax import losses

B, M, POS = 500, 3500, 167


def _time(f, *args, repeats: int) -> float:
  f = jax.jit(f)
  jax.block_until_ready(f(*args))  # compile
  t = time.perf_counter()
  for _ in range(repeats):
    out = f(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / repeats


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--repeats", type=int, default=3)
  args = ap.parse_args()
  rng = np.random.default_rng(0)
  x = jnp.asarray((rng.random((B, M)) < POS / M).astype(np.float32))
  s = jnp.asarray(rng.normal(size=(B, M)).astype(np.float32))
  print(f"devices: {jax.devices()}; batch [{B}, {M}], {int(x.sum())} positives")
  for c in (64, 256, 1024):
    loss = lambda s, x, c=c: losses.lambdarank_loss(s, x, chunk_size=c).sum()
    print(f"  lambdarank forward  chunk {c:5d}: {_time(loss, s, x, repeats=args.repeats):.3f} s")
    print(f"  lambdarank gradient chunk {c:5d}: "
          f"{_time(jax.grad(loss), s, x, repeats=args.repeats):.3f} s")

  def dense_pairs(s):
    z = s[:, :POS, None] - s[:, None, :]  # [B, POS, M]
    return (jax.nn.softplus(z) * jax.nn.sigmoid(z)).sum()
  print(f"  bare softplus*sigmoid over [B, {POS}, M] pairs: "
        f"{_time(dense_pairs, s, repeats=args.repeats):.3f} s")


if __name__ == "__main__":
  main()
