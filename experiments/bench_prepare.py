"""Benchmark: time and peak memory of `prepare_dataset` at ML-20M and MSD scale (synthetic raw files).

  python experiments/bench_prepare.py [--datasets=ml20m,msd[,netflix]] [--scale=1.0] [--workdir=DIR]
                                      [--keep]

For each dataset: writes a synthetic raw file in the real format (ML-20M `ratings.csv` with
half-star ratings so the 3.5 threshold applies, ~20M rows; MSD `train_triplets.txt` with hex user
ids and 'SO...' song ids, ~48M triplets, 1M users, 380k songs; optionally Netflix: one Kaggle
`combined_data` file, ~100M ratings), then runs `prepare_dataset` with the dataset's config (configs/ml20m.py, configs/msd.py: H = 10k / 50k, MSD min_item 200 / min_user 20)
in a fresh subprocess, so that each peak RSS (`resource.getrusage(...).ru_maxrss`) is its own. Also
times a second `prepare_dataset` (cache hit: it loads the cached directory to check it) and
`load_processed`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Raw sizes of the real downloads: ML-20M ratings.csv has 20,000,263 ratings by 138,493 users of
# 26,744 movies; MSD train_triplets.txt has 48,373,586 triplets, 1,019,318 users, 384,546 songs.
SPECS = {
    "ml20m": dict(n_users=138_493, n_items=26_744, mean_items_per_user=20_000_263 / 138_493,
                  activity_sigma=1.0, popularity_exponent=1.0, rank=16, taste_strength=2.0,
                  seed=0),
    "msd": dict(n_users=1_019_318, n_items=384_546, mean_items_per_user=48_373_586 / 1_019_318,
                activity_sigma=1.0, popularity_exponent=0.8, rank=16, taste_strength=2.0, seed=0),
    # Netflix Prize: 100,480,507 ratings by 480,189 users of 17,770 movies (optional: --datasets).
    "netflix": dict(n_users=480_189, n_items=17_770, mean_items_per_user=100_480_507 / 480_189,
                    activity_sigma=1.0, popularity_exponent=1.0, rank=16, taste_strength=2.0,
                    seed=0),
}
RAW_NAME = {"ml20m": "ratings.csv", "msd": "train_triplets.txt", "netflix": "combined_data_1.txt"}


def _maxrss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB.


def child_generate(name: str, path: str, scale: float) -> dict:
  from ract_jax.data.formats import synthetic  # pylint: disable=g-import-not-at-top
  spec = dict(SPECS[name])
  spec["n_users"] = max(100, int(spec["n_users"] * scale))
  t = time.time()
  stats = synthetic.write_raw(path, synthetic.SyntheticSpec(**spec), name)
  return dict(stats, wall_s=time.time() - t, max_rss_mb=_maxrss_mb(),
              bytes=os.path.getsize(path))


def child_prepare(name: str, raw: str, processed: str, scale: float) -> dict:
  import importlib  # pylint: disable=g-import-not-at-top
  from ract_jax.data import store  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f"configs.{name}").get_config()
  config.data.raw_path = raw
  config.data.processed_dir = processed
  if scale != 1.0:  # A quick, smaller run: item counts and H shrink with the number of users.
    config.data.heldout_users = max(5, int(config.data.heldout_users * scale))
    config.data.min_item_count = int(round(config.data.min_item_count * scale))
  lines = []
  t = time.time()
  store.prepare_dataset(config.data, log=lines.append)
  wall = time.time() - t
  rss = _maxrss_mb()
  t = time.time()
  store.prepare_dataset(config.data, log=lines.append)
  cached = time.time() - t
  t = time.time()
  data = store.load_processed(processed)
  load = time.time() - t
  return dict(wall_s=wall, max_rss_mb=rss, cache_hit_s=cached, load_s=load,
              counts=data.meta["counts"], stats=data.meta["stats"], log=lines,
              describe=store.describe(data))


def _run_child(args: list[str]) -> dict:
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  out = subprocess.run([sys.executable, os.path.abspath(__file__)] + args, cwd=REPO, env=env,
                       capture_output=True, text=True)
  if out.returncode:
    raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--datasets", default="ml20m,msd")
  p.add_argument("--scale", type=float, default=1.0, help="Fraction of the users (for a quick run).")
  p.add_argument("--workdir", default="", help="Where raw and processed data go (default: a temp "
                 "dir, deleted afterwards unless --keep).")
  p.add_argument("--keep", action="store_true")
  p.add_argument("--child", choices=["generate", "prepare"], help=argparse.SUPPRESS)
  p.add_argument("--name", help=argparse.SUPPRESS)
  p.add_argument("--raw", help=argparse.SUPPRESS)
  p.add_argument("--processed", help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.child == "generate":
    print(json.dumps(child_generate(a.name, a.raw, a.scale)))
    return
  if a.child == "prepare":
    print(json.dumps(child_prepare(a.name, a.raw, a.processed, a.scale)))
    return

  work = a.workdir or tempfile.mkdtemp(prefix="ract_jax_bench_")
  os.makedirs(work, exist_ok=True)
  print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; workdir {work}")
  try:
    for name in a.datasets.split(","):
      raw = os.path.join(work, name, RAW_NAME[name])
      processed = os.path.join(work, name, "processed")
      shutil.rmtree(processed, ignore_errors=True)
      os.makedirs(os.path.dirname(raw), exist_ok=True)
      common = ["--name", name, "--raw", raw, "--scale", str(a.scale)]
      if not os.path.exists(raw):
        g = _run_child(["--child", "generate"] + common)
        print(f"[{name}] generated {raw}: {g['rows']:,} rows, {g['users']:,} users, "
              f"{g['items']:,} items, {g['bytes'] / 2**30:.2f} GiB in {g['wall_s']:.0f}s "
              f"(peak RSS {g['max_rss_mb']:.0f} MiB)", flush=True)
      r = _run_child(["--child", "prepare", "--processed", processed] + common)
      for line in r["log"]:
        print(f"[{name}]   {line}")
      print(f"[{name}] prepare_dataset: {r['wall_s']:.1f}s wall, peak RSS {r['max_rss_mb']:.0f} MiB; "
            f"cache hit {r['cache_hit_s']:.2f}s; load_processed {r['load_s']:.2f}s")
      print(f"[{name}] stats: {json.dumps(r['stats'])}")
      print(r["describe"], flush=True)
  finally:
    if not a.keep and not a.workdir:
      shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  main()
