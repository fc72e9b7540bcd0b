"""Tables and numbers of the RaCT paper (Lobel et al., ICLR 2020) from finished training runs.

Reads what `python -m ract_jax.main --config=configs/<name>.py --workdir=W` leaves in W
(`results.json`, `metrics.jsonl`, `per_user_test_actor.npz`, `per_user_test_ract.npz`,
`config.json`) and writes `PREFIX.md` and `PREFIX.json`, then prints the Markdown:

  (a) Table 1: Recall@20, Recall@50 and NDCG@100 on the test users (± standard error) of RaCT, its
      pre-trained actor (the VAE), EASE and popularity, whichever the run has;
  (b) Figure 7: test NDCG@R for R in 10, 20, 50, 100, 200 before (actor) and after (RaCT);
  (c) Figure 8: mean test NDCG@100 by user activity group (activity = fold-in + held-out items;
      groups <250, 250-500, 501-750, >750 by default, see `activity_groups`);
  (d) the paired per-user test NDCG@100 difference RaCT - actor: mean, sd, 95% CI;
  (e) Figure 4: Pearson r of NLL vs NDCG@100 and of the critic vs NDCG@100 on the test users, and
      from `metrics.jsonl` the critic's r on training batches and on validation users at the end
      of stage 2 (critic pre-training) and of stage 3 (actor-critic).

Usage (from the repository root):
  python experiments/report.py W                       # writes W/report.md and W/report.json
  python experiments/report.py W1 W2 --out runs/cmp    # one Table 1 row per run and model
  python experiments/report.py W --activity-edges 50,100,200 --activity total

Reads only the workdir's files (numpy; Pearson r from `ract_jax.metrics`). Users with no held-out
item are left out of every mean.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Iterable, Sequence

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from ract_jax.metrics import paired_difference as paired, pearson_r  # noqa: E402

TABLE1_METRICS = ("recall@20", "recall@50", "ndcg@100")
PAPER_NDCG_RS = (10, 20, 50, 100, 200)
PAPER_ACTIVITY_EDGES = (250, 500, 750)
MODEL_ORDER = ("ract", "actor", "ease", "popularity")
ACTOR_NAMES = {"multvae": "VAE", "multdae": "DAE"}
STAGES = ("actor", "critic", "ac")
Z95 = 1.96


# ---- Loading -------------------------------------------------------------------------------------


def load_results(workdir: str) -> dict:
  """`results.json` of a run ({} when absent)."""
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def load_metrics(workdir: str) -> list[dict]:
  """Rows of `metrics.jsonl`, one per global epoch (the last row wins if one repeats), sorted."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  rows: dict[int, dict] = {}
  with open(path) as f:
    for line in f:
      if line.strip():
        row = json.loads(line)
        rows[int(row["global_epoch"])] = row
  return [rows[k] for k in sorted(rows)]


def load_per_user(workdir: str, name: str) -> dict[str, np.ndarray] | None:
  """Arrays of `per_user_test_<name>.npz` (name: 'actor' or 'ract'), or None when absent."""
  path = os.path.join(workdir, f"per_user_test_{name}.npz")
  if not os.path.exists(path):
    return None
  with np.load(path) as z:
    return {k: np.asarray(z[k]) for k in z.files}


def actor_display_name(workdir: str) -> str:
  """'VAE' or 'DAE' from the run's `config.json` (`actor.kind`); 'actor' when unknown."""
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      kind = json.load(f).get("actor", {}).get("kind", "")
  except (OSError, ValueError, AttributeError):
    kind = ""
  return ACTOR_NAMES.get(kind, kind or "actor")


def run_labels(workdirs: Sequence[str]) -> list[str]:
  """One label per workdir: its basename, or its path where basenames repeat."""
  norm = [os.path.normpath(w) for w in workdirs]
  base = [os.path.basename(os.path.abspath(w)) for w in norm]
  return [b if base.count(b) == 1 else n for b, n in zip(base, norm)]


# ---- Small statistics ----------------------------------------------------------------------------


def pearson(a, b) -> float:
  """Pearson r of two equal-length arrays (`ract_jax.metrics.pearson_r`: 0 when one is constant)."""
  return float(pearson_r(np.asarray(a, np.float32), np.asarray(b, np.float32)))


def _mean_se(x: np.ndarray) -> tuple[float, float]:
  """Mean and standard error as the trainer reports them (population std / sqrt(n))."""
  if x.size == 0:
    return float("nan"), float("nan")
  return float(x.mean()), float(x.std() / math.sqrt(x.size))


def _float(v) -> float | None:
  return None if v is None else float(v)


def align(actor: dict[str, np.ndarray],
          ract: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """Restricts two per-user dicts to their common users (by `uids`), in the same order.

  Users without held-out items (in either file) are dropped as well.
  """
  ua, ur = np.asarray(actor["uids"]), np.asarray(ract["uids"])
  if ua.shape == ur.shape and np.array_equal(ua, ur):
    ia = ir = np.arange(ua.size)
  else:
    common, ia, ir = np.intersect1d(ua, ur, assume_unique=False, return_indices=True)
  keep = (actor["n_heldout"][ia] > 0) & (ract["n_heldout"][ir] > 0)
  ia, ir = ia[keep], ir[keep]
  pick = lambda d, idx: {k: (np.asarray(v)[idx] if np.ndim(v) == 1 and len(v) == len(d["uids"])
                             else v) for k, v in d.items()}
  return pick(actor, ia), pick(ract, ir)


def _with_heldout(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  keep = np.asarray(d["n_heldout"]) > 0
  n = len(d["uids"])
  return {k: (np.asarray(v)[keep] if np.ndim(v) == 1 and len(v) == n else v) for k, v in d.items()}


# ---- (a) Table 1 ---------------------------------------------------------------------------------


def model_display_name(model: str, results: dict, actor_name: str = "VAE") -> str:
  """Row name of a model key of `results.json` (ract, actor, ease, popularity)."""
  if model == "ract":
    return "RaCT"
  if model == "actor":
    return f"{actor_name} (pre-trained actor)"
  if model == "ease":
    lam = results.get("ease", {}).get("lambda")
    return "EASE" + (f" (λ={lam:g})" if isinstance(lam, (int, float)) else "")
  if model == "popularity":
    return "Popularity"
  return model


def table1(results: dict, label: str = "", actor_name: str = "VAE", split: str = "test",
           metrics: Sequence[str] = TABLE1_METRICS) -> list[dict]:
  """Rows of the paper's Table 1 for one run: RaCT, its actor, EASE, popularity (those present).

  Args:
    results: the run's `results.json` content.
    label: the run's label (kept in each row as `run`).
    actor_name: display name of the pre-trained actor ('VAE', 'DAE').
    split: 'test' (Table 1) or 'validation'.
    metrics: metric keys (each with `<key>_se` in `results.json`).

  Returns:
    One dict per model: `run`, `model` (results key), `name`, each metric and `<metric>_se`
    (None where absent), `n_users`.
  """
  rows = []
  models = [m for m in MODEL_ORDER if m in results] + sorted(
      m for m in results if m not in MODEL_ORDER and isinstance(results[m], dict)
      and isinstance(results[m].get(split), dict))
  for model in models:
    summary = results[model].get(split) if isinstance(results[model], dict) else None
    if not isinstance(summary, dict):
      continue
    row = {"run": label, "model": model, "name": model_display_name(model, results, actor_name)}
    for m in metrics:
      row[m] = _float(summary.get(m))
      row[m + "_se"] = _float(summary.get(m + "_se"))
    row["n_users"] = summary.get("n_users")
    rows.append(row)
  return rows


def _fmt(v, digits: int = 4) -> str:
  if v is None:
    return "–"
  if isinstance(v, bool):
    return "yes" if v else "no"
  if isinstance(v, (int, np.integer)):
    return str(int(v))
  v = float(v)
  return f"{v:.{digits}f}" if math.isfinite(v) else "nan"


def _pm(v, se, digits: int = 4) -> str:
  return _fmt(v, digits) + ("" if se is None else f" ± {_fmt(se, digits)}")


def _md_table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
  return "\n".join(lines)


def to_markdown(rows: Sequence[dict], metrics: Sequence[str] = TABLE1_METRICS) -> str:
  """Markdown of `table1` rows (a `Run` column appears when the rows come from several runs)."""
  titles = {"recall@20": "Recall@20", "recall@50": "Recall@50", "ndcg@100": "NDCG@100"}
  several = len({r.get("run", "") for r in rows}) > 1
  header = (["Run"] if several else []) + ["Model"] + [titles.get(m, m) for m in metrics] + [
      "users"]
  body = []
  for r in rows:
    cells = ([r.get("run", "")] if several else []) + [r["name"]]
    cells += [_pm(r.get(m), r.get(m + "_se")) for m in metrics]
    cells.append(_fmt(r.get("n_users")))
    body.append(cells)
  return _md_table(header, body)


# ---- (b) Figure 7: NDCG@R before / after ---------------------------------------------------------


def ndcg_at_r(actor: dict[str, np.ndarray] | None, ract: dict[str, np.ndarray] | None,
              rs: Sequence[int] | None = None) -> list[dict]:
  """Test NDCG@R before (actor) and after (RaCT), per R (the paper's Figure 7).

  Means over the users with held-out items (the common users when both files are given).

  Args:
    actor, ract: per-user arrays (`load_per_user`); either may be None.
    rs: cut-offs; default: every `ndcg@R` present (paper: 10, 20, 50, 100, 200).

  Returns:
    One dict per R: `R`, `before`, `before_se`, `after`, `after_se`, `gain` (after - before),
    `gain_pct` (100 * gain / before); None where a model is missing.
  """
  if actor is not None and ract is not None:
    actor, ract = align(actor, ract)
  else:
    actor = _with_heldout(actor) if actor is not None else None
    ract = _with_heldout(ract) if ract is not None else None
  have = [d for d in (actor, ract) if d is not None]
  if not have:
    return []
  if rs is None:
    keys = set.intersection(*[{k for k in d if k.startswith("ndcg@")} for d in have])
    rs = sorted(int(k.split("@")[1]) for k in keys)
  out = []
  for r in rs:
    key = f"ndcg@{r}"
    row: dict[str, Any] = {"R": int(r)}
    for side, d in (("before", actor), ("after", ract)):
      if d is not None and key in d:
        row[side], row[side + "_se"] = _mean_se(np.asarray(d[key], np.float64))
      else:
        row[side] = row[side + "_se"] = None
    if row["before"] is not None and row["after"] is not None:
      row["gain"] = row["after"] - row["before"]
      row["gain_pct"] = 100.0 * row["gain"] / row["before"] if row["before"] else float("nan")
    else:
      row["gain"] = row["gain_pct"] = None
    out.append(row)
  return out


# ---- (c) Figure 8: NDCG@100 by activity ----------------------------------------------------------


def user_activity(d: dict[str, np.ndarray], activity: str = "total") -> np.ndarray:
  """Per-user activity: 'total' = n_foldin + n_heldout (default), 'foldin' or 'heldout'."""
  if activity == "total":
    return np.asarray(d["n_foldin"], np.int64) + np.asarray(d["n_heldout"], np.int64)
  if activity in ("foldin", "heldout"):
    return np.asarray(d["n_" + activity], np.int64)
  raise ValueError(f"activity must be total, foldin or heldout, not {activity!r}")


def activity_group_index(values, edges: Sequence[int] = PAPER_ACTIVITY_EDGES) -> np.ndarray:
  """Group of each activity value for integer bin edges e1 < e2 < ... < ek.

  Groups (the paper's <250, 250-500, 501-750, >750 for edges 250, 500, 750): group 0 is
  a < e1; group 1 is e1 <= a <= e2; group j (2 <= j < k) is e_j < a <= e_{j+1}; group k is a > ek.
  With a single edge: a < e1 and a >= e1.
  """
  edges = np.asarray(sorted(edges), np.int64)
  if edges.size == 0:
    raise ValueError("need at least one activity bin edge")
  a = np.asarray(values, np.int64)
  idx = np.searchsorted(edges, a, side="left")  # right-closed bins: (e_{j}, e_{j+1}]
  idx[a == edges[0]] = 1  # The paper's second group starts at e1 itself ("250-500").
  return idx


def activity_group_labels(edges: Sequence[int] = PAPER_ACTIVITY_EDGES) -> list[str]:
  """Labels of `activity_group_index` groups, e.g. ['<250', '250-500', '501-750', '>750']."""
  e = [int(x) for x in sorted(edges)]
  if len(e) == 1:
    return [f"<{e[0]}", f">={e[0]}"]
  labels = [f"<{e[0]}", f"{e[0]}-{e[1]}"]
  labels += [f"{e[j] + 1}-{e[j + 1]}" for j in range(1, len(e) - 1)]
  return labels + [f">{e[-1]}"]


def activity_groups(actor: dict[str, np.ndarray] | None, ract: dict[str, np.ndarray] | None,
                    edges: Sequence[int] = PAPER_ACTIVITY_EDGES, activity: str = "total",
                    metric: str = "ndcg@100") -> list[dict]:
  """Mean test `metric` per user-activity group before (actor) and after (RaCT) (Figure 8b).

  Args:
    actor, ract: per-user arrays (`load_per_user`); either may be None.
    edges: integer group edges (see `activity_group_index`); paper: 250, 500, 750.
    activity: 'total' (fold-in + held-out items, default), 'foldin' or 'heldout'.
    metric: per-user metric key.

  Returns:
    One dict per group: `group` (label), `n`, `activity_min`/`activity_max` (observed; None when
    empty), `before`, `before_se`, `after`, `after_se`, `gain` (None where not computable).
  """
  if actor is not None and ract is not None:
    actor, ract = align(actor, ract)
  else:
    actor = _with_heldout(actor) if actor is not None else None
    ract = _with_heldout(ract) if ract is not None else None
  ref = ract if ract is not None else actor
  if ref is None:
    return []
  act = user_activity(ref, activity)
  if actor is not None and ract is not None and not np.array_equal(
      user_activity(actor, activity), act):
    print("warning: actor and RaCT files disagree on per-user item counts; using RaCT's",
          file=sys.stderr)
  idx = activity_group_index(act, edges)
  out = []
  for g, label in enumerate(activity_group_labels(edges)):
    sel = idx == g
    row: dict[str, Any] = {"group": label, "n": int(sel.sum()),
                           "activity_min": int(act[sel].min()) if sel.any() else None,
                           "activity_max": int(act[sel].max()) if sel.any() else None}
    for side, d in (("before", actor), ("after", ract)):
      if d is not None and sel.any():
        row[side], row[side + "_se"] = _mean_se(np.asarray(d[metric], np.float64)[sel])
      else:
        row[side] = row[side + "_se"] = None
    row["gain"] = (row["after"] - row["before"]
                   if row["before"] is not None and row["after"] is not None else None)
    out.append(row)
  return out


# ---- (d) Paired difference ----------------------------------------------------------------------


def paired_difference(actor: dict[str, np.ndarray], ract: dict[str, np.ndarray],
                      metric: str = "ndcg@100", z: float = Z95) -> dict:
  """Paired per-user test difference RaCT - actor of `metric` over common users with held-out items.

  Returns:
    `n`, `before`, `after` (means), `mean` (of the differences), `sd` (sample sd, ddof=1), `se`
    (sd / sqrt(n)), `ci_low`, `ci_high` (mean ± z * se; z = 1.96 for 95%), `excludes_zero`,
    `n_better`, `n_worse`, `n_equal`.
  """
  a, r = align(actor, ract)
  x = np.asarray(a[metric], np.float64)
  y = np.asarray(r[metric], np.float64)
  n = int(x.size)
  return {"metric": metric, "before": float(x.mean()) if n else float("nan"),
          "after": float(y.mean()) if n else float("nan"), **paired(x, y, z)}


# ---- (e) Correlations ----------------------------------------------------------------------------


def last_row_of_stage(metrics: Sequence[dict], stage: str) -> dict | None:
  """The last `metrics.jsonl` row of a stage ('actor', 'critic', 'ac'), or None."""
  rows = [r for r in metrics if r.get("stage") == stage]
  return rows[-1] if rows else None


def best_row(metrics: Sequence[dict]) -> dict | None:
  """The row with the highest validation NDCG@100 (the first such row on ties), or None."""
  best = None
  for r in metrics:
    v = r.get("val", {}).get("ndcg@100")
    if v is not None and math.isfinite(v) and (best is None or v > best["val"]["ndcg@100"]):
      best = r
  return best


def selected_row(metrics: Sequence[dict], results: dict) -> dict | None:
  """The `metrics.jsonl` row of the epoch the trainer selected as final model (`results.json`'s
  `ract.diagnostics.best_global_epoch`, 1-based), when present and at the best validation
  NDCG@100 (ties are common: stage 2 keeps the best actor, so its epochs repeat its score);
  otherwise `best_row`."""
  b = best_row(metrics)
  sel = results.get("ract", {}).get("diagnostics", {}).get("best_global_epoch")
  if b is None or not isinstance(sel, int):
    return b
  for r in metrics:
    if r.get("global_epoch") == sel - 1 and r.get("val", {}).get("ndcg@100") is not None:
      return r if r["val"]["ndcg@100"] >= b["val"]["ndcg@100"] - 1e-12 else b
  return b


def correlations(results: dict, metrics: Sequence[dict],
                 actor: dict[str, np.ndarray] | None,
                 ract: dict[str, np.ndarray] | None) -> dict:
  """Figure 4 numbers and the critic's fit over training.

  Returns a dict with (None where not available):
    `test_nll_vs_ndcg@100_actor`: Pearson r on the test users of the stage-1 model (paper F.2);
    `test_nll_vs_ndcg@100_ract`, `test_critic_vs_ndcg@100_ract`: the same for the final model;
    `reported`: `results.json`'s `ract.diagnostics` as written by the trainer;
    `stage2_end`, `stage3_end`: `{global_epoch, epoch, train_critic_r, val_critic_r, mse,
      val_critic_mse}` from the last `metrics.jsonl` row of stages 2 and 3;
    `best`: `{global_epoch, stage, epoch, val_ndcg@100}` (0-based global epoch) of the first
      epoch with the best validation NDCG@100, and `selected`: the same for the trainer's pick
      (`selected_row`; a later epoch when scores tie).
  """
  out: dict[str, Any] = {}
  if actor is not None:
    a = _with_heldout(actor)
    out["test_nll_vs_ndcg@100_actor"] = pearson(a["nll"], a["ndcg@100"]) if "nll" in a else None
  else:
    out["test_nll_vs_ndcg@100_actor"] = None
  if ract is not None:
    r = _with_heldout(ract)
    out["test_nll_vs_ndcg@100_ract"] = pearson(r["nll"], r["ndcg@100"]) if "nll" in r else None
    out["test_critic_vs_ndcg@100_ract"] = (pearson(r["critic"], r["ndcg@100"])
                                           if "critic" in r else None)
  else:
    out["test_nll_vs_ndcg@100_ract"] = out["test_critic_vs_ndcg@100_ract"] = None
  out["reported"] = results.get("ract", {}).get("diagnostics")
  for key, stage in (("stage2_end", "critic"), ("stage3_end", "ac")):
    row = last_row_of_stage(metrics, stage)
    if row is None:
      out[key] = None
      continue
    val = row.get("val", {})
    out[key] = {"global_epoch": row.get("global_epoch"), "epoch": row.get("epoch"),
                "train_critic_r": row.get("critic_r"), "val_critic_r": val.get("critic_r"),
                "mse": row.get("mse"), "val_critic_mse": val.get("critic_mse")}
  for key, b in (("best", best_row(metrics)), ("selected", selected_row(metrics, results))):
    out[key] = None if b is None else {
        "global_epoch": b.get("global_epoch"), "stage": b.get("stage"), "epoch": b.get("epoch"),
        "val_ndcg@100": b["val"]["ndcg@100"]}
  return out


# ---- The whole report ----------------------------------------------------------------------------


def analyse_run(workdir: str, label: str = "", edges: Sequence[int] = PAPER_ACTIVITY_EDGES,
                activity: str = "total") -> dict:
  """Everything for one workdir: `table1`, `ndcg_at_r`, `activity_groups`, `paired_difference`
  (None unless both per-user files exist) and `correlations`."""
  results = load_results(workdir)
  metrics = load_metrics(workdir)
  actor, ract = load_per_user(workdir, "actor"), load_per_user(workdir, "ract")
  return {
      "run": label, "workdir": os.path.abspath(workdir),
      "table1": table1(results, label, actor_display_name(workdir)),
      "ndcg_at_r": ndcg_at_r(actor, ract),
      "activity_edges": [int(e) for e in sorted(edges)], "activity": activity,
      "activity_groups": activity_groups(actor, ract, edges, activity),
      "paired_ndcg@100": (paired_difference(actor, ract)
                          if actor is not None and ract is not None else None),
      "correlations": correlations(results, metrics, actor, ract),
      "files": {"results.json": bool(results), "metrics.jsonl": bool(metrics),
                "per_user_test_actor.npz": actor is not None,
                "per_user_test_ract.npz": ract is not None},
  }


def build_report(workdirs: Sequence[str], edges: Sequence[int] = PAPER_ACTIVITY_EDGES,
                 activity: str = "total") -> dict:
  """The report of several runs: `table1` (all rows) and `runs` (one `analyse_run` each)."""
  runs = [analyse_run(w, label, edges, activity)
          for w, label in zip(workdirs, run_labels(workdirs))]
  return {"table1": [row for run in runs for row in run["table1"]], "runs": runs}


def run_markdown(run: dict) -> str:
  """Markdown of parts (b)-(e) of one `analyse_run` result."""
  parts = [f"## Run `{run['run']}`", ""]
  if run["ndcg_at_r"]:
    parts += ["### NDCG@R on test, before (actor) and after (RaCT) — Figure 7", "",
              _md_table(["R", "before", "after", "gain", "gain %"], [
                  [r["R"], _pm(r["before"], r["before_se"]), _pm(r["after"], r["after_se"]),
                   _fmt(r["gain"]), _fmt(r["gain_pct"], 2)] for r in run["ndcg_at_r"]]), ""]
  if run["activity_groups"]:
    what = {"total": "fold-in + held-out", "foldin": "fold-in", "heldout": "held-out"}
    parts += [f"### Test NDCG@100 by user activity ({what[run['activity']]} items) — Figure 8",
              "", _md_table(["group", "users", "observed range", "before", "after", "gain"], [
                  [g["group"], g["n"],
                   "–" if g["activity_min"] is None
                   else f"{g['activity_min']}-{g['activity_max']}",
                   _pm(g["before"], g["before_se"]), _pm(g["after"], g["after_se"]),
                   _fmt(g["gain"])] for g in run["activity_groups"]]), ""]
  p = run["paired_ndcg@100"]
  if p is not None:
    verdict = "excludes 0" if p["excludes_zero"] else "includes 0"
    parts += ["### Paired test NDCG@100 difference, RaCT − actor", "",
              _md_table(["users", "actor", "RaCT", "mean diff", "sd", "95% CI", "CI",
                         "better / worse / equal"],
                        [[p["n"], _fmt(p["before"]), _fmt(p["after"]), _fmt(p["mean"], 5),
                          _fmt(p["sd"], 5), f"[{_fmt(p['ci_low'], 5)}, {_fmt(p['ci_high'], 5)}]",
                          verdict, f"{p['n_better']} / {p['n_worse']} / {p['n_equal']}"]]), ""]
  c = run["correlations"]
  rows = [["NLL vs NDCG@100, test users, pre-trained actor",
           _fmt(c["test_nll_vs_ndcg@100_actor"], 3)],
          ["NLL vs NDCG@100, test users, final model", _fmt(c["test_nll_vs_ndcg@100_ract"], 3)],
          ["critic vs NDCG@100, test users, final model",
           _fmt(c["test_critic_vs_ndcg@100_ract"], 3)]]
  for key, name in (("stage2_end", "end of stage 2"), ("stage3_end", "end of stage 3")):
    s = c[key]
    if s is not None:
      rows.append([f"critic vs NDCG@100, training batches, {name} (epoch {s['epoch']})",
                   _fmt(s["train_critic_r"], 3)])
      rows.append([f"critic vs NDCG@100, validation users, {name}", _fmt(s["val_critic_r"], 3)])
  parts += ["### Correlations (Pearson r) — Figure 4", "", _md_table(["what", "r"], rows), ""]
  b, sel = c["best"], c["selected"]
  if b is not None:
    parts += [f"Best validation NDCG@100 {_fmt(b['val_ndcg@100'])}, first reached at global epoch "
              f"{b['global_epoch'] + 1} ({b['stage']} epoch {b['epoch']}; 1-based)."]
    if sel is not None and sel["global_epoch"] != b["global_epoch"]:
      parts[-1] += (f" The trainer selected the tied global epoch {sel['global_epoch'] + 1} "
                    f"({sel['stage']} epoch {sel['epoch']}).")
    parts.append("")
  missing = [k for k, v in run["files"].items() if not v]
  if missing:
    parts += ["Missing: " + ", ".join(f"`{m}`" for m in missing) + ".", ""]
  return "\n".join(parts)


def report_markdown(report: dict) -> str:
  """The whole Markdown report: Table 1, then each run's parts (b)-(e)."""
  out = ["# RaCT results", "", "## Table 1 (test users; mean ± standard error)", "",
         to_markdown(report["table1"]) if report["table1"] else "(no results.json entries)", ""]
  out += [run_markdown(run) for run in report["runs"]]
  return "\n".join(out).rstrip() + "\n"


def _jsonable(obj):
  if isinstance(obj, dict):
    return {k: _jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_jsonable(v) for v in obj]
  if isinstance(obj, (np.integer,)):
    return int(obj)
  if isinstance(obj, (float, np.floating)):
    return float(obj) if math.isfinite(obj) else None
  if isinstance(obj, np.bool_):
    return bool(obj)
  return obj


def parse_edges(text: str) -> tuple[int, ...]:
  """'250,500,750' -> (250, 500, 750); strictly increasing integers."""
  edges = tuple(int(x) for x in text.split(",") if x.strip())
  if not edges or any(b <= a for a, b in zip(edges, edges[1:])):
    raise argparse.ArgumentTypeError(f"edges must be strictly increasing integers: {text!r}")
  return edges


def main(argv: Sequence[str] | None = None) -> dict:
  """Command line: writes PREFIX.md and PREFIX.json, prints the Markdown, returns the report."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("workdirs", nargs="+", help="training workdirs")
  p.add_argument("--out", default=None,
                 help="output prefix (default: FIRST_WORKDIR/report -> report.md, report.json)")
  p.add_argument("--activity-edges", type=parse_edges, default=PAPER_ACTIVITY_EDGES,
                 help="activity group edges (default 250,500,750: <250, 250-500, 501-750, >750)")
  p.add_argument("--activity", choices=("total", "foldin", "heldout"), default="total",
                 help="user activity: fold-in + held-out items (default), or either alone")
  args = p.parse_args(argv)
  for w in args.workdirs:
    if not os.path.isdir(w):
      p.error(f"not a directory: {w}")
  report = build_report(args.workdirs, args.activity_edges, args.activity)
  prefix = args.out or os.path.join(args.workdirs[0], "report")
  if os.path.dirname(prefix):
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
  md = report_markdown(report)
  with open(prefix + ".md", "w") as f:
    f.write(md)
  with open(prefix + ".json", "w") as f:
    json.dump(_jsonable(report), f, indent=2)
  print(md)
  print(f"wrote {prefix}.md and {prefix}.json", file=sys.stderr)
  return report


if __name__ == "__main__":
  main()
