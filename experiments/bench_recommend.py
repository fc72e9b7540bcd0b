"""Throughput of `ract_jax.recommend.Recommender`: users per second for single users and batches.

Reads a finished workdir's model (`<workdir>/model/`) and, for realistic histories, the training
users of its processed data (from the workdir's config.json; the cache must hold it). Each call is
`recommend({user: raw item ids, ...}, k)` end to end: raw ids -> indices, host batch, the jitted
fold-in and top-k, raw ids back. Programs are compiled in a warm-up pass first (one per padded
shape); the timed pass reuses them.

Usage (from the repository root):
  python experiments/bench_recommend.py W                 # batch of 1 (200 users) and of 1,000
  python experiments/bench_recommend.py W --batch 1000 --single 500 --repeats 5 --k 100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import ml_collections
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from ract_jax.data import load_dataset  # noqa: E402
from ract_jax.recommend import Recommender  # noqa: E402


def training_histories(workdir: str, n: int) -> dict:
  """The first `n` training users of the run's processed data, in raw ids."""
  with open(os.path.join(workdir, "config.json")) as f:
    data_cfg = ml_collections.ConfigDict(json.load(f)["data"])
  data = load_dataset(data_cfg, log=lambda *a: None)
  sid = np.asarray(data.unique_sid, dtype=object)
  uid = np.asarray(data.unique_uid, dtype=object)
  n = min(n, data.train.n_rows)
  return {uid[u]: sid[data.train.row(u)].tolist() for u in range(n)}


def bench(rec: Recommender, histories: dict, batch: int, k: int, repeats: int) -> dict:
  """Users per second of `recommend` in batches of `batch` users over `histories`."""
  users = list(histories)
  groups = [{u: histories[u] for u in users[i:i + batch]} for i in range(0, len(users), batch)]
  for g in groups:  # Warm-up: every padded shape compiles here.
    rec.recommend(g, k=k)
  traces = rec.traces
  t0 = time.perf_counter()
  for _ in range(repeats):
    for g in groups:
      rec.recommend(g, k=k)
  seconds = time.perf_counter() - t0
  assert rec.traces == traces, "a timed call compiled"
  n = repeats * len(users)
  return {"batch": batch, "users": n, "seconds": seconds, "users_per_s": n / seconds,
          "ms_per_call": 1000 * seconds / (repeats * len(groups))}


def main(argv=None) -> list[dict]:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("workdir")
  ap.add_argument("--batch", type=int, default=1000, help="users per call of the batched run")
  ap.add_argument("--single", type=int, default=200, help="users of the one-at-a-time run")
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--k", type=int, default=100)
  args = ap.parse_args(argv)
  rec = Recommender.from_workdir(args.workdir)
  hist = training_histories(args.workdir, max(args.batch, args.single))
  lengths = np.array([len(h) for h in hist.values()])
  print(f"{rec.description}\ndevice {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"k={args.k}, histories: {len(hist)} training users, {lengths.mean():.0f} items on "
        f"average (max {lengths.max()})")
  rows = [bench(rec, dict(list(hist.items())[:args.single]), 1, args.k, args.repeats),
          bench(rec, dict(list(hist.items())[:args.batch]), args.batch, args.k, args.repeats)]
  for r in rows:
    print(f"batch {r['batch']:>5}: {r['users_per_s']:>9,.0f} users/s  ({r['ms_per_call']:.2f} ms "
          f"per call, {r['users']:,} users in {r['seconds']:.2f} s)")
  print(f"programs compiled: {rec.traces}")
  return rows


if __name__ == "__main__":
  main()
