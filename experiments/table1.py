"""The layout of the paper's Table 1 (all methods; Recall@20, Recall@50, NDCG@100) from finished runs.

Rows, in the paper's order: RaCT on top of each run's actor; Table 1's WARP and LambdaRank rows,
i.e. a pre-trained Mult-VAE fine-tuned on that loss in place of the critic (runs of the
`:vae_warp_ft` / `:vae_lambdarank_ft` presets, the authors' main_warp_critic.py /
main_lambdarank_critic.py); each run's actor trained by its own loss (VAE, ...), then the baselines found in any of the runs' `results.json`
(EASE, CDAE, WMF, SLIM, popularity; each with the hyper-parameters chosen on the validation users).
A baseline evaluated in several runs of the same split must give the same numbers; it is listed
once, from the first run that has it. The best value of each column is bold.

Usage (from the repository root; every workdir must be of the same dataset and split):
  python experiments/table1.py runs/vae runs/vae_warp_ft runs/vae_lambdarank_ft --out runs/table1
writes runs/table1.md and runs/table1.json and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import paper_runs
import report

METRICS = report.TABLE1_METRICS  # recall@20, recall@50, ndcg@100
BASELINE_ORDER = ("ease", "cdae", "wmf", "slim", "popularity")
BASELINE_NAMES = {"ease": "EASE", "cdae": "CDAE", "wmf": "WMF", "slim": "SLIM",
                  "popularity": "Popularity"}
FT_NAMES = {"warp": "WARP", "lambdarank": "LambdaRank"}
# Two runs' values of one baseline may differ by this much (float noise of separate fits).
SAME_TOL = 1e-4


def _row(name: str, kind: str, run: str, summary: dict, **extra) -> dict:
  row = {"method": name, "kind": kind, "run": run, "n_users": summary.get("n_users")}
  for m in METRICS:
    row[m] = report._float(summary.get(m))
    row[m + "_se"] = report._float(summary.get(m + "_se"))
  row.update(extra)
  return row


def build_table1(workdirs: Sequence[str], split: str = "test",
                 baseline_runs: Sequence[str] = ()) -> tuple[list[dict], list[str]]:
  """Table 1's rows over the workdirs, and notes (e.g. a baseline that differs between runs).

  `baseline_runs`: more workdirs (same split) that contribute only their baselines' rows.

  Returns:
    (rows, notes). Each row: `method`, `kind` ('ract', 'actor' or 'baseline'), `run`, the three
    metrics and their `_se`, `n_users`; baselines also `hyperparameters` and `seconds` (the grid
    search's wall time, where the run recorded it); RaCT and actor rows `train_seconds` (summed
    over the stages that produced the model) and `selected` (the epoch chosen on validation).
  """
  runs = paper_runs.load_runs(list(workdirs) + list(baseline_runs))
  ract_rows, ft_rows, actor_rows, base = [], [], [], {}
  notes = []
  for i, run in enumerate(runs):
    res, label = run["results"], run["run"]
    if i >= len(workdirs):  # a baseline-only run
      res = {k: v for k, v in res.items() if k in BASELINE_ORDER}
    sec = paper_runs.stage_seconds(run["metrics"])
    if isinstance(res.get("ract"), dict) and split in res["ract"]:
      ract_rows.append(_row(f"RaCT ({run['actor_name']})", "ract", label, res["ract"][split],
                            train_seconds=sum(sec.values()),
                            selected=_epoch_text(report.selected_row(run["metrics"], res))))
    if isinstance(res.get("ft"), dict) and split in res["ft"]:
      ft = res["ft"]
      stage3 = [r for r in run["metrics"] if r.get("stage") == "ac"]
      sel = [r for r in stage3 if r.get("global_epoch") == ft.get("best_global_epoch", 0) - 1]
      ft_rows.append(_row(f"{FT_NAMES.get(ft.get('objective'), ft.get('objective'))} "
                          f"({run['actor_name']} fine-tuned{_profile(run)})", "ft", label, ft[split],
                          train_seconds=sum(sec.values()),
                          selected=_epoch_text(sel[0] if sel else report.best_row(stage3),
                                               "fine-tuning")))
    if isinstance(res.get("actor"), dict) and split in res["actor"] and "ft" not in res:
      stage1 = [r for r in run["metrics"] if r.get("stage") == "actor"]
      actor_rows.append(_row(run["actor_name"], "actor", label, res["actor"][split],
                             train_seconds=sec["actor"],
                             selected=_epoch_text(report.best_row(stage1))))
    for name in BASELINE_ORDER:
      entry = res.get(name)
      if not isinstance(entry, dict) or split not in entry:
        continue
      row = _row(BASELINE_NAMES[name], "baseline", label, entry[split],
                 hyperparameters=paper_runs.hyperparameters(entry), seconds=entry.get("seconds"))
      if name not in base:
        base[name] = row
        continue
      first = base[name]
      diff = max(abs((row[m] or 0.0) - (first[m] or 0.0)) for m in METRICS)
      if diff > SAME_TOL:
        notes.append(f"{BASELINE_NAMES[name]}: run {label} gives values {diff:.2g} away from run "
                     f"{first['run']} (listed); check that both used the same data and grid.")
  rows = ract_rows + ft_rows + actor_rows + [base[n] for n in BASELINE_ORDER if n in base]
  return rows, notes


def _profile(run: dict) -> str:
  """', authors' for a run of the `authors` profile (docs/profiles.md), '' for the paper's."""
  profile = run["config"].get("profile", "paper")
  return "" if profile == "paper" else f", {profile}"


def _epoch_text(row: dict | None, stage3: str = "stage-3") -> str:
  """'stage-1 epoch 97' for the `metrics.jsonl` row of a selected model ('–' if unknown)."""
  if row is None:
    return "–"
  if row.get("stage") == "ac" and stage3 != "stage-3":
    return f"{stage3} epoch {row.get('epoch')}"
  stage = {"actor": 1, "critic": 2, "ac": 3}.get(row.get("stage"), row.get("stage"))
  return f"stage-{stage} epoch {row.get('epoch')}"


def _hp_text(hp) -> str:
  if not hp:
    return "–"
  return ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                   for k, v in sorted(hp.items()))


def to_markdown(rows: Sequence[dict]) -> str:
  """Markdown of `build_table1` rows; the best value of each metric is bold."""
  best = {m: max((r[m] for r in rows if r[m] is not None), default=None) for m in METRICS}
  titles = {"recall@20": "Recall@20", "recall@50": "Recall@50", "ndcg@100": "NDCG@100"}
  body = []
  for r in rows:
    cells = [r["method"]]
    for m in METRICS:
      text = report._pm(r[m], r[m + "_se"])
      cells.append(f"**{text}**" if r[m] is not None and r[m] == best[m] else text)
    if r["kind"] == "baseline":
      cost = "–" if r.get("seconds") is None else f"{r['seconds']:.0f} (grid + scoring)"
      cells += [_hp_text(r.get("hyperparameters")), cost]
    else:
      cells += [r["selected"], f"{r['train_seconds']:.0f} (training epochs)"]
    cells += [report._fmt(r["n_users"]), r["run"]]
    body.append(cells)
  header = (["Method"] + [titles[m] for m in METRICS]
            + ["chosen on validation", "seconds", "users", "run"])
  return report._md_table(header, body)


def main(argv: Sequence[str] | None = None) -> list[dict]:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("workdirs", nargs="+", help="training workdirs of one dataset")
  p.add_argument("--out", default="table1", help="output prefix (writes PREFIX.md, PREFIX.json)")
  p.add_argument("--split", choices=("test", "validation"), default="test")
  p.add_argument("--baseline-runs", nargs="*", default=[],
                 help="more workdirs of the same split whose baselines (only) are listed")
  args = p.parse_args(argv)
  try:
    rows, notes = build_table1(args.workdirs, args.split, args.baseline_runs)
  except paper_runs.TableError as e:
    p.error(str(e))
  md = (f"# Table 1: all methods ({args.split} users; mean ± standard error)\n\n"
        + to_markdown(rows) + "\n" + "".join(f"\nNote: {n}\n" for n in notes))
  if os.path.dirname(args.out):
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out + ".md", "w") as fh:
    fh.write(md)
  with open(args.out + ".json", "w") as fh:
    json.dump(report._jsonable({"rows": rows, "notes": notes}), fh, indent=2)
  print(md)
  print(f"wrote {args.out}.md and {args.out}.json", file=sys.stderr)
  return rows


if __name__ == "__main__":
  main()
