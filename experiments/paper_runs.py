"""What `table1.py` and `table2.py` share: reading a set of finished workdirs of one dataset.

A workdir is what `python -m ract_jax.main --config=configs/<name>.py[:<actor preset>]
--workdir=W` leaves: `results.json`, `metrics.jsonl`, `config.json`, `per_user_test_*.npz`.
Needs only numpy (nothing from `ract_jax`), like `report.py`.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import report  # experiments/report.py (this folder is on sys.path when a script here runs).

# The `config.data` keys that decide the split; runs compared in one table must agree on them.
# (Not the paths: the same file may sit elsewhere on another machine.)
SPLIT_KEYS = ("name", "format", "rating_threshold", "min_user_count", "min_item_count",
              "heldout_users", "heldout_fraction", "min_items_to_split", "split_seed", "synthetic")


class TableError(ValueError):
  """A workdir that cannot go into a table; the message names it and says what to do."""


def load_config(workdir: str) -> dict:
  """The run's `config.json` as a dict.

  Raises:
    TableError: if the file is missing or not JSON.
  """
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise TableError(f"{path}: missing; is {workdir} a workdir of `python -m ract_jax.main`?") \
        from None
  except ValueError as e:
    raise TableError(f"{path}: not valid JSON ({e}); rerun or remove this workdir.") from None


def actor_name(actor: dict) -> str:
  """The paper's name (Tables 1 and 2) of the actor a `config.actor` dict describes.

  Follows `configs/base.py` `ACTOR_PRESETS`: the loss names the ranking actors (WARP, LambdaRank)
  and MF (weighted squared error); otherwise the kind, the shape, the Gaussian likelihood and the
  delta posterior (beta = 0) do.
  """
  kind, shape, loss = actor.get("kind"), actor.get("shape"), actor.get("loss", "multinomial")
  if loss == "warp":
    return "WARP"
  if loss == "lambdarank":
    return "LambdaRank" + ("" if kind == "multvae" and shape == "ract" else f" ({kind}, {shape})")
  if loss == "weighted_sq":
    return "MF" + ("" if kind == "multdae" and shape == "linear" else f" ({kind}, {shape})")
  if kind == "item_item":
    return "item-item" + (" (low-rank correction)" if shape == "lowrank" else "")
  if kind == "multdae":
    base = {"liang": "DAE (Liang et al., 2018)", "ract": "DAE (RaCT's I-600-200-600-I)",
            "linear": "DAE (Linear)"}.get(shape, f"DAE ({shape})")
    return base + (" (Gaussian)" if loss == "gaussian" else "")
  if kind == "multvae":
    extras = []
    if loss == "gaussian":
      extras.append("Gaussian")
    if actor.get("deterministic"):
      extras.append("β = 0")
    if shape == "linear":
      extras.append("Linear")
    elif shape == "liang":
      extras.append("Liang's shape")
    return "VAE" + (f" ({', '.join(extras)})" if extras else "")
  return str(kind or "actor")


def stage_seconds(metrics: Sequence[dict]) -> dict[str, float]:
  """Training seconds per stage ('actor', 'critic', 'ac'): the sum of the epochs' `seconds`
  (the jitted epoch alone; evaluation and checkpoints excluded)."""
  out = {s: 0.0 for s in report.STAGES}
  for row in metrics:
    if row.get("stage") in out:
      out[row["stage"]] += float(row.get("seconds", 0.0))
  return out


def stage_epochs(metrics: Sequence[dict]) -> dict[str, int]:
  """Epochs recorded per stage."""
  out = {s: 0 for s in report.STAGES}
  for row in metrics:
    if row.get("stage") in out:
      out[row["stage"]] += 1
  return out


def load_runs(workdirs: Sequence[str]) -> list[dict]:
  """Reads each workdir; checks that all of them share one split.

  Returns:
    One dict per workdir: `run` (label), `workdir`, `config`, `results`, `metrics`, `actor_name`.

  Raises:
    TableError: a missing directory, config or results file, or runs on different splits.
  """
  if not workdirs:
    raise TableError("no workdirs given")
  runs = []
  for w, label in zip(workdirs, report.run_labels(workdirs)):
    if not os.path.isdir(w):
      raise TableError(f"{w}: not a directory")
    config = load_config(w)
    results = report.load_results(w)
    if not results:
      raise TableError(f"{os.path.join(w, 'results.json')}: missing or empty; the run has not "
                       "evaluated anything yet (wait for it, or leave this workdir out).")
    runs.append({"run": label, "workdir": os.path.abspath(w), "config": config,
                 "results": results, "metrics": report.load_metrics(w),
                 "actor_name": actor_name(config.get("actor", {}))})
  first = runs[0]
  for r in runs[1:]:
    for key in SPLIT_KEYS:
      a = first["config"].get("data", {}).get(key)
      b = r["config"].get("data", {}).get(key)
      if a != b:
        raise TableError(
            f"{r['workdir']} and {first['workdir']} use different data (config.data.{key}: "
            f"{b!r} vs {a!r}); a table compares runs on one split: pass workdirs of one dataset.")
  return runs


def hyperparameters(entry: dict) -> dict:
  """A baseline's chosen hyper-parameters from its `results.json` entry (old runs: `lambda`)."""
  hp = entry.get("hyperparameters")
  if isinstance(hp, dict):
    return hp
  return {"lam": entry["lambda"]} if "lambda" in entry else {}
