"""EASE's lambda search: a Cholesky solve per lambda (the old 5-value grid) against one
eigendecomposition for the whole grid (`ease.search`), timed in one run. Prints a table.

  python experiments/bench_ease.py --data ml1m                  # ml-1m-implicit (../shared/data)
  python experiments/bench_ease.py --data ml_latest_small       # 9.7k items, few users
  python experiments/bench_ease.py --data synthetic --items 17000 --users 60000

Rows, each timed as a whole (Gram matrix, factorisations, validation scoring, compiles):
  eigen-16   `ease.search` over `ease.DEFAULT_LAMBDAS` (16 values, 1 .. 1e5);
  eigen-old  `ease.search` over the old grid (the agreement check: same grid as `cholesky`);
  cholesky   the old way: `ease.fit` + validation for each lambda of the old grid.
Then, per old-grid lambda: validation NDCG@100 by the eigen path and by the direct B, and the
largest |score difference| on the validation users' non-fold-in items over the largest |score|.
Validation is `evaluate.Evaluator.run` + `evaluate.summarize`, as in training.

With --precision instead: for each of `ease.DEFAULT_LAMBDAS`, the validation scores of the eigen
path (float64 eigendecomposition on the host, float32 on the device) and of `fit` (float32 Cholesky)
against float64 Cholesky's (max |difference| / max |score| over non-fold-in items), and the change
in validation NDCG@100.
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

from ract_jax import evaluate  # noqa: E402
from ract_jax.baselines import ease  # noqa: E402
from ract_jax.data import batches, load_dataset  # noqa: E402
from ract_jax.data.csr import CSR  # noqa: E402
from ract_jax.train import parallel  # noqa: E402

OLD_GRID = (100.0, 200.0, 500.0, 1000.0, 2000.0)


def _config(args):
  if args.data == "ml1m":
    from configs import ml1m_implicit
    return ml1m_implicit.get_config()
  if args.data == "ml_latest_small":
    from configs import ml_latest_small
    return ml_latest_small.get_config()
  from configs import default
  c = default.get_config()
  c.data.name = f"synthetic-{args.items}x{args.users}"
  c.data.synthetic.n_items = args.items
  c.data.synthetic.n_users = args.users
  c.data.heldout_users = args.heldout
  return c


def _best(lams, ndcgs):
  i = int(np.argmax(ndcgs))  # First maximum: ties keep the earliest lambda, as `search` does.
  return lams[i], ndcgs[i]


def _rows(csr: CSR, r0: int, r1: int):
  """Rows r0:r1 of `csr` as (entries, dense), the score functions' inputs."""
  indptr = csr.indptr[r0:r1 + 1] - csr.indptr[r0]
  part = CSR(indptr, csr.indices[csr.indptr[r0]:csr.indptr[r1]], csr.n_items)
  dev = batches.DeviceCSR(jnp.asarray(part.indptr, jnp.int32), jnp.asarray(part.indices, jnp.int32))
  users = jnp.arange(r1 - r0, dtype=jnp.int32)
  return batches.gather_entries(dev, users, batches.entry_capacity(part, r1 - r0)), part.to_dense()


def _eigen_scores(params, csr: CSR, batch=2000):
  parts = []
  for r0 in range(0, csr.n_rows, batch):
    entries, x = _rows(csr, r0, min(r0 + batch, csr.n_rows))
    parts.append(np.asarray(ease.eigen_scores(params, entries, x)))
  return np.concatenate(parts)


def _max_rel_diff(params, b, csr: CSR, batch=2000):
  worst, scale = 0.0, 0.0
  for r0 in range(0, csr.n_rows, batch):
    entries, x = _rows(csr, r0, min(r0 + batch, csr.n_rows))
    direct = np.asarray(ease.scores(b, x))
    eig = np.asarray(ease.eigen_scores(params, entries, x))
    keep = x == 0  # Fold-in items are masked to -inf by the evaluator.
    worst = max(worst, float(np.abs(np.where(keep, eig - direct, 0)).max()))
    scale = max(scale, float(np.abs(np.where(keep, direct, 0)).max()))
  return worst / scale


def _rel_diff(scores, ref, fold_in):
  keep = fold_in == 0
  return float(np.abs(np.where(keep, scores - ref, 0)).max() / np.abs(np.where(keep, ref, 0)).max())


def precision(data, validate):
  """The --precision table (see the module docstring)."""
  fold_in = data.validation.fold_in.to_dense()
  eig = {f64: ease.eigen(ease.gram_matrix(data.train), float64=f64) for f64 in (True, False)}
  print(f"lambda_max(G) = {float(eig[True][1].max()):.4g}")
  print("| lambda | NDCG@100, float64 Cholesky | eigen float64: rel diff, d NDCG | "
        "eigen float32: rel diff, d NDCG | Cholesky float32: rel diff, d NDCG |")
  print("|---|---|---|---|---|")
  for lam in ease.DEFAULT_LAMBDAS:
    b64 = ease.fit(data.train, lam, float64=True)  # float64 solve, B rounded to float32
    ref = fold_in.astype(np.float64) @ b64.astype(np.float64)
    ndcg_ref = validate(ease.direct_scores, b64)["ndcg@100"]
    cells = []
    for f64 in (True, False):
      params = ease.eigen_params(*eig[f64], lam)
      got = _eigen_scores(params, data.validation.fold_in)
      cells.append((_rel_diff(got, ref, fold_in),
                    validate(ease.eigen_scores, params)["ndcg@100"] - ndcg_ref))
    b32 = ease.fit(data.train, lam)
    cells.append((_rel_diff(np.asarray(ease.scores(b32, fold_in)), ref, fold_in),
                  validate(ease.direct_scores, b32)["ndcg@100"] - ndcg_ref))
    print(f"| {lam:g} | {ndcg_ref:.5f} | " +
          " | ".join(f"{r:.1e}, {d:+.1e}" for r, d in cells) + " |", flush=True)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--data", choices=("ml1m", "ml_latest_small", "synthetic"), default="ml1m")
  ap.add_argument("--items", type=int, default=17_000)
  ap.add_argument("--users", type=int, default=60_000)
  ap.add_argument("--heldout", type=int, default=2_000)
  ap.add_argument("--float64", choices=("auto", "yes", "no"), default="auto",
                  help="eigendecomposition precision (auto: float64 on the CPU backend)")
  ap.add_argument("--skip_agreement", action="store_true",
                  help="skip the eigen-old row and the per-lambda comparison (one eigh less)")
  ap.add_argument("--precision", action="store_true", help="the precision table instead")
  args = ap.parse_args()
  float64 = {"auto": None, "yes": True, "no": False}[args.float64]

  config = _config(args)
  data = load_dataset(config.data, log=lambda *a: None)
  split = data.validation
  ev = evaluate.Evaluator(split, parallel.make_mesh(), config.eval.batch_size,
                          tuple(config.eval.ndcg_ks), tuple(config.eval.recall_ks))
  load = os.getloadavg()
  print(f"{config.data.name}: {data.train.n_rows} training users, {data.train.n_items} items, "
        f"{data.train.nnz} interactions; {split.n_users} validation users; {jax.devices()}; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)

  def validate(score_fn, params):
    return evaluate.summarize(ev.run(score_fn, params))

  if args.precision:
    return precision(data, validate)
  log = lambda s: print("   ", s, flush=True)
  rows = []

  t = time.perf_counter()
  hp, val, b = ease.search(data.train, ease.DEFAULT_LAMBDAS, validate, max_items=None, log=log,
                           float64=float64)
  rows.append(("eigen-16", len(ease.DEFAULT_LAMBDAS), time.perf_counter() - t, hp["lam"],
               val["ndcg@100"]))
  del b

  captured = []  # The eigen path's parameters and NDCG@100 per old-grid lambda (one shared V).

  def capture(score_fn, params):
    out = validate(score_fn, params)
    if score_fn is ease.eigen_scores:
      captured.append((params, out["ndcg@100"]))
    return out

  if not args.skip_agreement:
    t = time.perf_counter()
    hp, val, b = ease.search(data.train, OLD_GRID, capture, max_items=None, log=log,
                             float64=float64)
    rows.append(("eigen-old", len(OLD_GRID), time.perf_counter() - t, hp["lam"], val["ndcg@100"]))
    del b

  direct, diffs, seconds = [], [], 0.0
  for i, lam in enumerate(OLD_GRID):
    t = time.perf_counter()
    b = ease.fit(data.train, lam)
    direct.append(validate(ease.direct_scores, b)["ndcg@100"])
    seconds += time.perf_counter() - t
    print(f"    cholesky lam {lam:g}: val ndcg@100 {direct[-1]:.4f}", flush=True)
    if captured:
      diffs.append(_max_rel_diff(captured[i][0], b, split.fold_in))
    del b
  rows.append(("cholesky", len(OLD_GRID), seconds, *_best(OLD_GRID, direct)))

  load = os.getloadavg()
  print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
  print("| search | lambdas | seconds | s / lambda | chosen lambda | val NDCG@100 |")
  print("|---|---|---|---|---|---|")
  for name, n, sec, lam, ndcg in rows:
    print(f"| {name} | {n} | {sec:.1f} | {sec / n:.1f} | {lam:g} | {ndcg:.4f} |")
  if captured:
    print("\n| lambda | val NDCG@100 eigen | val NDCG@100 Cholesky | difference | "
          "max rel score diff |")
    print("|---|---|---|---|---|")
  for lam, (_, e), d, r in zip(OLD_GRID, captured, direct, diffs):
    print(f"| {lam:g} | {e:.5f} | {d:.5f} | {e - d:+.1e} | {r:.1e} |")


if __name__ == "__main__":
  main()
