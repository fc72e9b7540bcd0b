"""Peak host memory of EASE's lambda search, in dense M x M float32 matrices (`PEAK_MATRICES`).

  python experiments/ease_memory.py --items 6000              # float32 decomposition (default)
  python experiments/ease_memory.py --items 6000 --float64

Runs `ease_search.search` on a random 20,000-user matrix (1% density) and 500 validation users
with a stand-in validation (no evaluator), and prints the process's max RSS above its resident
size before the search, divided by 4 M^2 bytes: after the decomposition and at the end (the
closed-form solve). Run each variant in a fresh process (max RSS never decreases).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import jax.numpy as jnp  # noqa: E402

from ract_jax.baselines import ease_search  # noqa: E402
from ract_jax.data.csr import CSR  # noqa: E402


def _random_csr(rng, n: int, m: int, density: float) -> CSR:
  nnz = int(n * m * density)
  key = np.unique(rng.integers(0, n, nnz).astype(np.int64) * m + rng.integers(0, m, nnz))
  return CSR.from_pairs(key // m, key % m, n, m)


def _rss() -> int:
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--items", type=int, default=6000)
  ap.add_argument("--float64", action="store_true")
  args = ap.parse_args()
  m = args.items
  rng = np.random.default_rng(0)
  train, validation = _random_csr(rng, 20_000, m, 0.01), _random_csr(rng, 500, m, 0.01)
  jnp.ones(3).block_until_ready()
  base = _rss()

  def peak() -> float:
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base) / (4 * m * m)

  def log(line: str) -> None:
    if line.startswith("ease  eigendecomposition"):
      print(f"after the decomposition: {peak():.2f} M^2 float32")

  def validate(score_fn, params):  # Any finite number that waits for the parameters: memory only.
    del score_fn
    return {"ndcg@100": float(jnp.sum(params["w"] if isinstance(params, dict) else params[0]))}

  _, _, b = ease_search.search(train, validation, (10.0, 100.0, 1000.0), validate, max_items=None,
                               log=log, float64=args.float64, memory_bytes=1e15)
  b.block_until_ready()  # The closed-form solve runs asynchronously.
  print(f"M = {m}, {'float64' if args.float64 else 'float32'} decomposition: peak {peak():.2f} "
        f"M^2 float32 above the {base / 1e9:.2f} GB before the search "
        f"(PEAK_MATRICES: {ease_search.PEAK_MATRICES['cpu', args.float64]['host']})")


if __name__ == "__main__":
  main()
