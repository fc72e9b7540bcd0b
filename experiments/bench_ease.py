"""EASE's lambda search, timed in one run: one eigendecomposition for the 16-value grid
(`ease_search.search`, what a training run does) against a Cholesky solve per lambda (the old way,
`ease.fit` + validation) over the old 5-value grid and, with --cholesky16, over the same 16 values.

  python experiments/bench_ease.py --data ml1m                  # ml-1m-implicit (../shared/data)
  python experiments/bench_ease.py --data ml_latest_small       # 9.7k items, 610 users
  python experiments/bench_ease.py --data synthetic --items 17000 --users 60000

Each search is timed as a whole (Gram matrix, factorisations, validation scoring), in interleaved
rounds: the first round includes the compiles, the best later round is warm. Validation is
`evaluate.Evaluator.run` + `evaluate.summarize` with the training run's evaluator (batches of at
most the split's users). Prints a Markdown table with the chosen lambda and its validation NDCG@100.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from ract_jax import config_base, evaluate  # noqa: E402
from ract_jax.baselines import ease, ease_search  # noqa: E402
from ract_jax.data import load_dataset  # noqa: E402
from ract_jax.device import parallel  # noqa: E402

OLD_GRID = (100.0, 200.0, 500.0, 1000.0, 2000.0)
CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "configs")


def _config(args):
  if args.data in ("ml1m", "ml_latest_small"):
    return config_base.load(os.path.join(CONFIGS, {"ml1m": "ml1m_implicit.py"}.get(
        args.data, f"{args.data}.py")))
  c = config_base.load(os.path.join(CONFIGS, "default.py"))
  c.data.name = f"synthetic-{args.items}x{args.users}"
  c.data.synthetic.n_items, c.data.synthetic.n_users = args.items, args.users
  c.data.heldout_users = args.heldout
  return c


def cholesky_search(train, lambdas, validate):
  """The old way: one `ease.fit` (a Cholesky inverse) and one validation per lambda."""
  best = None
  for lam in lambdas:
    val = validate(ease_search.direct_scores, ease.fit(train, lam))
    if best is None or val["ndcg@100"] > best[1]["ndcg@100"]:
      best = (lam, val)
  return best


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--data", default="ml1m", choices=("ml1m", "ml_latest_small", "synthetic"))
  ap.add_argument("--items", type=int, default=17_000)
  ap.add_argument("--users", type=int, default=60_000)
  ap.add_argument("--heldout", type=int, default=2_000)
  ap.add_argument("--cholesky16", action="store_true", help="also the old way on the 16 values")
  ap.add_argument("--float64", action="store_true", help="the search's float64 decomposition")
  ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds of every variant")
  args = ap.parse_args()
  if args.repeats < 1:
    ap.error(f"--repeats={args.repeats}: give 1 or more rounds")
  config = _config(args)
  data = load_dataset(config.data, log=lambda s: None)
  # The training run's evaluator (train/setup.py): batches of at most the split's users.
  validation = evaluate.Evaluator(
      data.validation, parallel.make_mesh(),
      batch_size=evaluate.batch_size_for([data.validation], config.eval.batch_size))
  validate = lambda fn, p: evaluate.summarize(validation.run(fn, p))  # noqa: E731
  print(f"{args.data}: {data.n_items} items, {data.train.n_rows} training users, "
        f"{data.validation.n_users} validation users")
  variants = [("Cholesky per lambda, old 5 values",
               lambda: cholesky_search(data.train, OLD_GRID, validate)),
              ("eigendecomposition, 16 values", lambda: _eigen(data, validate, args.float64))]
  if args.cholesky16:
    variants.append(("Cholesky per lambda, 16 values",
                     lambda: cholesky_search(data.train, ease_search.DEFAULT_LAMBDAS, validate)))
  # Interleaved rounds: the first pays each variant's compiles (and shares those of the Cholesky
  # solve and direct scoring, which come first), later rounds are warm for every variant.
  times = {name: [] for name, _ in variants}
  chosen = {}
  for _ in range(args.repeats):
    for name, fn in variants:
      t = time.perf_counter()
      chosen[name] = fn()
      times[name].append(time.perf_counter() - t)
  print("\n| search | first round (s) | best later round (s) | chosen lambda | validation NDCG@100 |"
        "\n|---|---|---|---|---|")
  for name, _ in variants:
    lam, val = chosen[name]
    later = f"{min(times[name][1:]):.1f}" if len(times[name]) > 1 else "-"
    print(f"| {name} | {times[name][0]:.1f} | {later} | {lam:g} | {val['ndcg@100']:.4f} |")


def _eigen(data, validate, float64: bool):
  hp, val, _ = ease_search.search(data.train, data.validation.fold_in, ease_search.DEFAULT_LAMBDAS,
                                  validate, max_items=None, log=print, float64=float64)
  return hp["lam"], val


if __name__ == "__main__":
  main()
