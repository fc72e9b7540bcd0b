"""Fake finished workdirs for the table scripts' tests (`results.json`, `config.json`,
`metrics.jsonl`, per-user files), with numbers small enough to check by hand."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = {"name": "ml1m-implicit", "raw_path": "/x/interactions.txt", "heldout_users": 600,
        "split_seed": 98765}


def load_experiment(filename: str):
  """Imports `experiments/<filename>` (its folder on sys.path, as when the script runs)."""
  sys.path.insert(0, str(ROOT / "experiments"))
  try:
    name = "ract_exp_" + filename[:-3]
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
  finally:
    sys.path.remove(str(ROOT / "experiments"))


def summary(r20: float, r50: float, n100: float, se: float = 0.001) -> dict:
  return {"recall@20": r20, "recall@20_se": se, "recall@50": r50, "recall@50_se": se,
          "ndcg@100": n100, "ndcg@100_se": se, "n_users": 4, "n_skipped": 0}


def write_run(path: pathlib.Path, actor: dict, results: dict, data: dict | None = None,
              stage_seconds=(2.0, 1.0, 3.0), stage_epochs=(3, 2, 2),
              per_user: tuple | None = None) -> pathlib.Path:
  """Writes a fake workdir. `per_user`: (actor ndcg@100 [n], ract ndcg@100 [n]) or None."""
  path.mkdir(parents=True, exist_ok=True)
  config = {"actor": actor, "data": dict(DATA, **(data or {})),
            "schedule": dict(zip(("actor_epochs", "critic_epochs", "ac_epochs"), stage_epochs))}
  (path / "config.json").write_text(json.dumps(config))
  (path / "results.json").write_text(json.dumps(results))
  rows, g = [], 0
  for stage, n, sec in zip(("actor", "critic", "ac"), stage_epochs, stage_seconds):
    for k in range(1, n + 1):
      val = 0.30 + 0.01 * g  # rises every epoch: the last epoch is the best
      rows.append({"global_epoch": g, "stage": stage, "epoch": k, "epochs": n,
                   "seconds": sec / n, "val": {"ndcg@100": val}})
      g += 1
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  if per_user is not None:
    for name, values in zip(("actor", "ract"), per_user):
      n = len(values)
      np.savez(path / f"per_user_test_{name}.npz", uids=np.arange(n),
               n_heldout=np.ones(n, np.int64), n_foldin=np.ones(n, np.int64),
               **{"ndcg@100": np.asarray(values, np.float64)})
  return path
