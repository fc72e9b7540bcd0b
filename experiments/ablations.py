"""The paper's Figure 5 (critic feature ablations) and Table 6 (NDCG vs Recall critic), all from ONE
pre-trained actor, as a Markdown table and a PNG.

Variants (stages 2-3 only, each in `<runs>/<name>`, from `--pretrained_actor`'s `actor_best/`):
  all        the three features [|H1|, |H0|, L_E] (eq. 5), NDCG@100 critic (= RaCT)
  no_seen    without |H1| (the kept input items)           config.critic.use_seen=False
  no_unseen  without |H0| (the dropped items)              config.critic.use_unseen=False
  nll_only   without both counts (L_E only)                both False
  recall     all features, a Recall@100 critic (Table 6)   config.critic.metric=recall
L_E itself cannot be dropped: it is the critic's only link to the actor (section 5.3), so a
"counts only" critic would leave stage 3 nothing to differentiate.

Usage (from the repository root):
  python experiments/ablations.py --config=configs/ml1m_implicit.py \
      --pretrained_actor=runs/vae --runs=runs/ablations [--critic_epochs=50 --ac_epochs=50] \
      [--variants=all,recall] [--report_only]
writes <runs>/ablations.md, <runs>/ablations.json and <runs>/ablations.png. Finished variants are
not re-run (their workdirs report and exit); a killed one resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Sequence

import numpy as np

VARIANTS = {
    "all": [],
    "no_seen": ["--config.critic.use_seen=False"],
    "no_unseen": ["--config.critic.use_unseen=False"],
    "nll_only": ["--config.critic.use_seen=False", "--config.critic.use_unseen=False"],
    "recall": ["--config.critic.metric=recall"],
}
TITLES = {"all": "all features (RaCT)", "no_seen": "without H1 (kept-item count)",
          "no_unseen": "without H0 (dropped-item count)",
          "nll_only": "L_E only (no counts)", "recall": "all features, Recall@100 critic"}
METRICS = ("ndcg@100", "recall@20", "recall@50", "recall@100")


def command(name: str, config: str, pretrained: str, runs: str, critic_epochs: int | None,
            ac_epochs: int | None) -> list[str]:
  """The training command of one variant (stages 2-3 from the pre-trained actor)."""
  cmd = [sys.executable, "-m", "ract_jax.main", f"--config={config}",
         f"--workdir={os.path.join(runs, name)}", f"--config.pretrained_actor={pretrained}",
         "--config.baselines.names=()"] + VARIANTS[name]
  if critic_epochs is not None:
    cmd.append(f"--config.schedule.critic_epochs={critic_epochs}")
  if ac_epochs is not None:
    cmd.append(f"--config.schedule.ac_epochs={ac_epochs}")
  return cmd


def _load(workdir: str) -> dict | None:
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(os.path.join(workdir, "finished.json")):
    return None
  with open(path) as f:
    results = json.load(f)
  rows = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  per_user = {}
  for name in ("actor", "ract"):
    p = os.path.join(workdir, f"per_user_test_{name}.npz")
    if os.path.exists(p):
      with np.load(p) as z:
        per_user[name] = {k: z[k] for k in z.files}
  return {"results": results, "metrics": rows, "per_user": per_user}


def paired(run: dict, metric: str = "ndcg@100") -> dict | None:
  """RaCT - actor on the test users with held-out items (`metrics.paired_difference`)."""
  from ract_jax import metrics
  a, r = run["per_user"].get("actor"), run["per_user"].get("ract")
  if a is None or r is None:
    return None
  keep = (a["n_heldout"] > 0) & (r["n_heldout"] > 0)
  return metrics.paired_difference(a[metric][keep], r[metric][keep])


def table(runs: dict) -> tuple[str, list[dict]]:
  """Markdown and rows: each variant's test metrics of the selected model, the paired NDCG@100
  gain over the pre-trained actor, the selected epoch and the last critic's training r."""
  rows = []
  for name, run in runs.items():
    res = run["results"]
    test = res["ract"]["test"]
    p = paired(run)
    last = [r for r in run["metrics"] if "critic_r" in r]
    stage2 = [r for r in run["metrics"] if r.get("stage") == "critic"]
    rows.append({"variant": name, "title": TITLES[name],
                 **{m: test.get(m) for m in METRICS},
                 "actor_ndcg@100": res["actor"]["test"]["ndcg@100"],
                 "gain": p["mean"] if p else None, "ci_low": p["ci_low"] if p else None,
                 "ci_high": p["ci_high"] if p else None,
                 "best_stage": res["ract"].get("diagnostics", {}).get("best_stage"),
                 "best_global_epoch": res["ract"].get("diagnostics", {}).get("best_global_epoch"),
                 "critic_r_end_stage2": stage2[-1].get("critic_r") if stage2 else None,
                 "critic_r_end": last[-1]["critic_r"] if last else None,
                 "epochs": [len(stage2), len(run["metrics"]) - len(stage2)]})
  head = ("| critic | test NDCG@100 | Recall@20 | Recall@50 | Recall@100 | NDCG@100 gain over the "
          "actor [95% paired interval] | selected | critic train r (end of stage 2 / 3) |")
  lines = [head, "|---|---|---|---|---|---|---|---|"]
  f = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
  for r in rows:
    gain = "–" if r["gain"] is None else (f"{r['gain']:+.4f} [{r['ci_low']:+.4f}, "
                                          f"{r['ci_high']:+.4f}]")
    lines.append(f"| {r['title']} | {f(r['ndcg@100'])} | {f(r['recall@20'])} | "
                 f"{f(r['recall@50'])} | {f(r['recall@100'])} | {gain} | {r['best_stage']} "
                 f"(global epoch {r['best_global_epoch']}) | {f(r['critic_r_end_stage2'])} / "
                 f"{f(r['critic_r_end'])} |")
  if rows:
    lines.append(f"\nPre-trained actor (all variants): test NDCG@100 {rows[0]['actor_ndcg@100']:.4f}; "
                 f"stage-2 / stage-3 epochs: {rows[0]['epochs'][0]} / {rows[0]['epochs'][1]}.")
  return "\n".join(lines) + "\n", rows


def plot(runs: dict, path: str) -> None:
  """Validation NDCG@100 per epoch of stages 2-3 for each variant (Figure 5's curves)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.2))
  for name, run in runs.items():
    rows = run["metrics"]
    ax.plot([r["global_epoch"] + 1 for r in rows], [r["val"]["ndcg@100"] for r in rows],
            label=TITLES[name])
  stage2 = [r for r in next(iter(runs.values()))["metrics"] if r.get("stage") == "critic"]
  if stage2:
    ax.axvline(len(stage2) + 0.5, color="gray", lw=0.8, ls=":")
  ax.set_xlabel("epoch (stage 2, then stage 3)")
  ax.set_ylabel("validation NDCG@100")
  ax.set_title("Critic feature ablations and the Recall critic, one pre-trained actor")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--config", default="configs/ml1m_implicit.py")
  p.add_argument("--pretrained_actor", required=True, help="a workdir with actor_best/")
  p.add_argument("--runs", default="runs/ablations")
  p.add_argument("--variants", default=",".join(VARIANTS))
  p.add_argument("--critic_epochs", type=int, default=None, help="override (a reduced schedule)")
  p.add_argument("--ac_epochs", type=int, default=None, help="override (a reduced schedule)")
  p.add_argument("--report_only", action="store_true", help="only collect finished variants")
  args = p.parse_args(argv)
  names = [v for v in args.variants.split(",") if v]
  unknown = [v for v in names if v not in VARIANTS]
  if unknown:
    p.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
  if not os.path.isdir(os.path.join(args.pretrained_actor, "actor_best")):
    p.error(f"--pretrained_actor={args.pretrained_actor}: no actor_best/ there.")
  os.makedirs(args.runs, exist_ok=True)
  for name in names:
    if args.report_only:
      continue
    cmd = command(name, args.config, args.pretrained_actor, args.runs, args.critic_epochs,
                  args.ac_epochs)
    print(" ".join(cmd), file=sys.stderr, flush=True)
    with open(os.path.join(args.runs, f"{name}.log"), "a") as log:
      rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    if rc:
      print(f"{name}: exit status {rc} (see {args.runs}/{name}.log)", file=sys.stderr)
  runs = {n: r for n in names if (r := _load(os.path.join(args.runs, n))) is not None}
  md, rows = table(runs)
  out = os.path.join(args.runs, "ablations")
  with open(out + ".md", "w") as f:
    f.write("# Critic feature ablations (Figure 5) and the Recall critic (Table 6)\n\n" + md)
  with open(out + ".json", "w") as f:
    json.dump(rows, f, indent=2)
  if runs:
    plot(runs, out + ".png")
  print(md)
  missing = [n for n in names if n not in runs]
  if missing:
    print(f"not finished: {missing}", file=sys.stderr)
  return {"rows": rows, "missing": missing}


if __name__ == "__main__":
  main()
