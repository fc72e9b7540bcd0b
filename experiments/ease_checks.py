"""The measurements behind EASE's search (BUILD.md, "The EASE search"), on one dataset:

  python experiments/ease_checks.py --data ml1m              # all three parts
  python experiments/ease_checks.py --data ml100k --parts precision,batch

- `timing`: each piece on its own (best of 2): the Gram matrix, the eigendecompositions (float32
  `syevd`, float64 `syevr` and `syevd`), one closed-form solve (float32 on the JAX device, float64
  on the host), one validation of a B with the configured evaluation batch and with the batch
  capped at the split's users (`evaluate.batch_size_for`).
- `precision`: the search's validation NDCG@100 for every lambda of the 16 with the float32 and
  the float64 decomposition, their largest difference, the lambda each chooses and the best's
  margin over the runner-up (what `ease_search.RECHECK_NDCG` is set against).
- `batch`: the per-user metrics of one closed-form B scored with the configured batch and with
  the capped one: how many users differ in each metric and by how much.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import jax  # noqa: E402
import scipy.linalg  # noqa: E402

from ract_jax import config_base, evaluate  # noqa: E402
from ract_jax.baselines import ease, ease_search  # noqa: E402
from ract_jax.data import load_dataset  # noqa: E402
from ract_jax.device import parallel  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "configs")
FILES = {"ml1m": "ml1m_implicit.py", "ml100k": "ml100k.py", "ml_latest_small": "ml_latest_small.py"}


def _best_of(n: int, fn) -> float:
  times = []
  for _ in range(n):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return min(times)


def timing(data, gram, validators):
  g32, g64 = np.asfortranarray(gram), np.asfortranarray(gram, np.float64)
  eigh = lambda a, driver: scipy.linalg.eigh(a.copy(order="F"), lower=True, overwrite_a=True,  # noqa: E731
                                             check_finite=False, driver=driver)[0]
  rows = [("Gram matrix (scipy sparse)", lambda: ease.gram_matrix(data.train)),
          ("eigendecomposition float32, syevd", lambda: eigh(g32, "evd")),
          ("eigendecomposition float64, syevr", lambda: eigh(g64, "evr")),
          ("eigendecomposition float64, syevd", lambda: eigh(g64, "evd")),
          ("closed form float32 (JAX device)", lambda: ease.fit_from_gram(gram, 1000.0)),
          ("closed form float64 (host)", lambda: ease.fit_from_gram(gram, 1000.0, float64=True))]
  b = ease.fit_from_gram(gram, 1000.0)
  for size, validate in validators.items():
    validate(ease_search.direct_scores, b)  # Compile first.
    rows.append((f"one validation, batch {size}",
                 lambda v=validate: v(ease_search.direct_scores, b)["ndcg@100"]))
  print("\n| piece (M = %d) | seconds, best of 2 |\n|---|---|" % data.n_items)
  for name, fn in rows:
    print(f"| {name} | {_best_of(2, fn):.2f} |")


def precision(gram, data, validate):
  ndcg = {}
  for float64 in (False, True):
    v, s = ease_search.eigen(gram, float64=float64)
    xv = ease_search.users_times_v(data.validation.fold_in, v)
    ndcg[float64] = np.array([validate(ease_search.lambda_scores,
                                       ease_search.lambda_params(xv, v, s, lam))["ndcg@100"]
                              for lam in ease_search.DEFAULT_LAMBDAS])
    del v, s, xv
  diff = ndcg[False] - ndcg[True]
  print("\n| lambda | float64 search | float32 search | difference |\n|---|---|---|---|")
  for lam, a, b, d in zip(ease_search.DEFAULT_LAMBDAS, ndcg[True], ndcg[False], diff):
    print(f"| {lam:g} | {a:.6f} | {b:.6f} | {d:+.2e} |")
  worst = int(np.argmax(np.abs(diff)))
  best = {k: int(np.argmax(v)) for k, v in ndcg.items()}
  runner_up = np.sort(ndcg[True])[-2]
  print(f"\nlargest |difference| {abs(diff[worst]):.2e} at lambda "
        f"{ease_search.DEFAULT_LAMBDAS[worst]:g}; chosen: float32 "
        f"{ease_search.DEFAULT_LAMBDAS[best[False]]:g}, float64 "
        f"{ease_search.DEFAULT_LAMBDAS[best[True]]:g} (difference there "
        f"{abs(diff[best[True]]):.1e}); float64 best - runner-up {ndcg[True].max() - runner_up:.1e}")


def batch(gram, evaluators):
  b = ease.fit_from_gram(gram, 1000.0)
  (size_a, ev_a), (size_b, ev_b) = evaluators.items()
  a, c = ev_a.run(ease_search.direct_scores, b), ev_b.run(ease_search.direct_scores, b)
  print(f"\nper-user values, batch {size_a} against batch {size_b} (lambda 1000):")
  for key in sorted(a):
    d = np.abs(a[key].astype(np.float64) - c[key].astype(np.float64)).reshape(len(a[key]), -1)
    print(f"  {key}: {int((d.max(1) > 0).sum())} users differ, largest {d.max():.3g}")


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--data", default="ml1m", choices=sorted(FILES))
  ap.add_argument("--parts", default="timing,precision,batch")
  args = ap.parse_args()
  parts = args.parts.split(",")
  unknown = sorted(set(parts) - {"timing", "precision", "batch"})
  if unknown:
    ap.error(f"--parts={args.parts}: unknown {unknown}; give a comma-separated subset of "
             "timing,precision,batch")
  config = config_base.load(os.path.join(CONFIGS, FILES[args.data]))
  data = load_dataset(config.data, log=lambda s: None)
  print(f"{args.data}: {data.n_items} items, {data.train.n_rows} training users, "
        f"{data.validation.n_users} validation users")
  sizes = (config.eval.batch_size, evaluate.batch_size_for([data.validation], config.eval.batch_size))
  evaluators = {n: evaluate.Evaluator(data.validation, parallel.make_mesh(), batch_size=n)
                for n in dict.fromkeys(sizes)}
  validators = {n: (lambda fn, p, e=e: evaluate.summarize(e.run(fn, p))) for n, e in evaluators.items()}
  gram = ease.gram_matrix(data.train)
  if "timing" in parts:
    timing(data, gram, validators)
  if "precision" in parts:
    precision(gram, data, validators[sizes[1]])
  if "batch" in parts and len(evaluators) == 2:
    batch(gram, evaluators)


if __name__ == "__main__":
  main()
