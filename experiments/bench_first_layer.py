"""The actor's first layer alone, sparse against dense form, by input density (forward + dW).

  python experiments/bench_first_layer.py [--densities=0.01,0.045,0.1,0.15,0.2,0.4] [--items=3690]

Both forms (`actors.FIRST_LAYERS`) are timed interleaved on random batches of B users x M items at
each density, half the entries kept (keep_prob 0.5, as in training); the minimum over `--repeats`
rounds is printed. Where the dense form starts winning is what `config.actor.dense_above_density`
(the 'auto' threshold) should be on this device.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from ract_jax import actors  # noqa: E402
from ract_jax import config_base as base  # noqa: E402
from ract_jax.actors import sparse_layer  # noqa: E402


def time_forms(density: float, b: int, m: int, h: int, repeats: int, seed: int = 0) -> dict:
  """`{form: min seconds}` of forward + dW of the first layer on one random batch."""
  rng = np.random.default_rng(seed)
  chunk = sparse_layer.DEFAULT_CHUNK
  nnz = int(density * b * m)
  cap = max(chunk, -(-nnz // chunk) * chunk)
  seg, item, vals = np.zeros(cap, np.int32), np.zeros(cap, np.int32), np.zeros(cap, np.float32)
  seg[:nnz] = np.sort(rng.integers(0, b, nnz))
  item[:nnz] = rng.integers(0, m, nnz)
  vals[:nnz] = np.where(rng.random(nnz) < 0.5, 0.1, 0.0)
  inp = actors.SparseInput(*(jnp.asarray(a) for a in (seg, item, vals)), jnp.arange(b))
  w = jax.random.normal(jax.random.PRNGKey(0), (m, h)) * 0.03
  g = jax.random.normal(jax.random.PRNGKey(1), (b, h))
  cfg = base.get_base_config().actor
  fns = {}
  for form in actors.FIRST_LAYERS:
    def f(w, inp, form=form):
      out, vjp = jax.vjp(actors.FIRST_LAYERS[form](inp, cfg, chunk), w)
      return out, vjp(g)[0]
    fns[form] = jax.jit(f)
    jax.block_until_ready(fns[form](w, inp))
  best = {form: np.inf for form in fns}
  for _ in range(repeats):
    for form, f in fns.items():
      t = time.perf_counter()
      jax.block_until_ready(f(w, inp))
      best[form] = min(best[form], time.perf_counter() - t)
  return best


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--densities", default="0.01,0.045,0.1,0.15,0.2,0.4")
  ap.add_argument("--users", type=int, default=500)
  ap.add_argument("--items", type=int, default=3690)
  ap.add_argument("--hidden", type=int, default=600)
  ap.add_argument("--repeats", type=int, default=9)
  args = ap.parse_args()
  print(f"devices: {jax.devices()}; B {args.users}, M {args.items}, H {args.hidden}")
  for d in (float(x) for x in args.densities.split(",")):
    t = time_forms(d, args.users, args.items, args.hidden, args.repeats)
    print(f"density {d:6.3f}: sparse {t['sparse'] * 1e3:8.1f} ms  dense {t['dense'] * 1e3:8.1f} ms",
          flush=True)


if __name__ == "__main__":
  main()
