"""The layout of the paper's Table 2 ("Performance gain for various actors") from finished runs.

One row per workdir (one actor each, e.g. `--config=configs/ml1m_implicit.py:warp`): the actor's
test NDCG@100 before RaCT (the best stage-1 actor by validation) and after (the best model of
stages 1-3 by validation), the gain in units of 1e-3 as the paper prints it, and, from the per-user
files, the paired 95% interval of the gain and how many users went up / down. Also the cost of the
run: epochs and training seconds per stage (the jitted epochs alone, from `metrics.jsonl`).

Usage (from the repository root; every workdir must be of the same dataset and split):
  python experiments/table2.py runs/vae runs/vae_gaussian runs/warp --out runs/table2
writes runs/table2.md and runs/table2.json and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import paper_runs
import report

METRIC = "ndcg@100"


def table2_row(run: dict, workdir: str) -> dict:
  """Table 2's row of one loaded run (see `paper_runs.load_runs`).

  Returns:
    `run`, `actor`, `before`, `after`, `gain` (after - before), `gain_e3` (x 1e3), `before_se`,
    `after_se`, `val_before`, `val_after`, `paired` (`report.paired_difference`, or None),
    `epochs` and `train_seconds` per stage, `complete` (False when RaCT has not finished).
  """
  res = run["results"]
  actor = res.get("actor", {})
  ract = res.get("ract", {})
  before = report._float(actor.get("test", {}).get(METRIC))
  after = report._float(ract.get("test", {}).get(METRIC))
  gain = None if before is None or after is None else after - before
  per_actor = report.load_per_user(workdir, "actor")
  per_ract = report.load_per_user(workdir, "ract")
  paired = (report.paired_difference(per_actor, per_ract, METRIC)
            if per_actor is not None and per_ract is not None else None)
  return {
      "run": run["run"], "actor": run["actor_name"], "before": before, "after": after,
      "gain": gain, "gain_e3": None if gain is None else 1e3 * gain,
      "before_se": report._float(actor.get("test", {}).get(METRIC + "_se")),
      "after_se": report._float(ract.get("test", {}).get(METRIC + "_se")),
      "val_before": report._float(actor.get("validation", {}).get(METRIC)),
      "val_after": report._float(ract.get("validation", {}).get(METRIC)),
      "paired": paired,
      "epochs": paper_runs.stage_epochs(run["metrics"]),
      "schedule": run["config"].get("schedule", {}),
      "train_seconds": paper_runs.stage_seconds(run["metrics"]),
      "complete": before is not None and after is not None,
  }


def build_table2(workdirs: Sequence[str]) -> list[dict]:
  """`table2_row` for each workdir, in the order given."""
  runs = paper_runs.load_runs(workdirs)
  return [table2_row(run, w) for run, w in zip(runs, workdirs)]


def to_markdown(rows: Sequence[dict]) -> str:
  """Table 2 (Actor, Before, After, Gain x 1e-3) plus the paired interval and the run's cost."""
  f = report._fmt
  body = []
  for r in rows:
    p = r["paired"]
    ci = "–" if p is None else f"[{1e3 * p['ci_low']:+.2f}, {1e3 * p['ci_high']:+.2f}]"
    ud = "–" if p is None else f"{p['n_better']} / {p['n_worse']}"
    ep, sec, sch = r["epochs"], r["train_seconds"], r["schedule"]
    epochs = " / ".join(f"{ep[s]}" + (f" of {sch[k]}" if sch.get(k) not in (None, ep[s]) else "")
                        for s, k in zip(report.STAGES, ("actor_epochs", "critic_epochs",
                                                        "ac_epochs")))
    body.append([r["actor"], f(r["before"]), f(r["after"]),
                 "–" if r["gain_e3"] is None else f"{r['gain_e3']:+.2f}", ci, ud,
                 f"{f(r['val_before'])} → {f(r['val_after'])}", epochs,
                 " / ".join(f"{sec[s]:.0f}" for s in report.STAGES), r["run"]])
  header = ["Actor", "Before", "After", "Gain (×10⁻³)", "paired 95% CI (×10⁻³)",
            "users up / down", "validation before → after", "epochs (stage 1 / 2 / 3)",
            "train s (1 / 2 / 3)", "run"]
  return report._md_table(header, body)


def main(argv: Sequence[str] | None = None) -> list[dict]:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("workdirs", nargs="+", help="training workdirs, one actor each")
  p.add_argument("--out", default="table2", help="output prefix (writes PREFIX.md, PREFIX.json)")
  args = p.parse_args(argv)
  try:
    rows = build_table2(args.workdirs)
  except paper_runs.TableError as e:
    p.error(str(e))
  md = ("# Table 2: test NDCG@100 of each actor before and after RaCT\n\n" + to_markdown(rows)
        + "\n")
  if os.path.dirname(args.out):
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out + ".md", "w") as fh:
    fh.write(md)
  with open(args.out + ".json", "w") as fh:
    json.dump(report._jsonable(rows), fh, indent=2)
  print(md)
  print(f"wrote {args.out}.md and {args.out}.json", file=sys.stderr)
  return rows


if __name__ == "__main__":
  main()
