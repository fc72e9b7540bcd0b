"""Beyond the paper (issue 14): RaCT on the EASE-initialised item-item actor, designed variants.

  python experiments/beyond.py run    --data=ml1m [--variants=a,b] [--root=runs/beyond]
  python experiments/beyond.py report --data=ml1m [--out=docs/beyond.md]

`run` trains each variant (stage 1 skipped: the actor starts at EASE's closed form with the lambda
chosen on validation; stages 2 and 3 as for every actor) in `<root>/<data>/<variant>/`, one after
the other (a finished workdir is skipped, an interrupted one resumes). Every model is selected on
the validation users (the trainer keeps the best actor by validation NDCG@100 over all epochs, the
EASE start included), the test users are scored once. `report` writes the Markdown table: test
NDCG@100 / Recall@20 / Recall@50 of the start (EASE) and of RaCT, the paired 95% interval of the
per-user NDCG@100 gain (`metrics.paired_difference`), the critic's validation Pearson r at the end
of stage 2, the selected epoch and the seconds per epoch of stages 2 and 3.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ract_jax import metrics  # noqa: E402

DATA = {"ml1m": "configs/ml1m_implicit.py", "ml100k": "configs/ml100k.py",
        "mlsmall": "configs/ml_latest_small.py"}
RICH = '("nll_unseen","nll_seen","margin","top_std","entropy")'
# The critic's Adam at 1e-3 (paper: 1e-4): ML-1M has 10 steps per epoch, 1e-4 left the critic
# rising after 15 epochs (validation r 0.44 at epoch 8 in a first run).
COMMON = ["--config.schedule.actor_epochs=0", "--config.baselines.names=()",
          "--config.critic.learning_rate=1e-3"]
# name -> (preset, what it tests, overrides). Short schedules: the CPU is shared (see docs/beyond.md).
VARIANTS = {
    # The straightforward version with the evaluation's split: full B, paper features.
    "full_paper_1e-6": ("item_item", "every entry of B, the paper's 3 features, lr 1e-6",
                        ["--config.ac.actor_learning_rate=1e-6"]),
    # Richer features: the critic sees the NLL of the items to predict and the top-k margins.
    "full_rich_1e-6": ("item_item", "every entry of B, + 5 richer features, lr 1e-6",
                       ["--config.ac.actor_learning_rate=1e-6", f"--config.critic.features={RICH}"]),
    # A low-rank correction of a frozen EASE: B0 + U V (rank 32), far fewer free parameters.
    "lowrank_paper_1e-4": ("item_item_lowrank", "B0 frozen + U V (r 32), paper features, lr 1e-4",
                           ["--config.ac.actor_learning_rate=1e-4"]),
    "lowrank_rich_1e-4": ("item_item_lowrank", "B0 frozen + U V (r 32), + 5 richer features, "
                          "lr 1e-4", ["--config.ac.actor_learning_rate=1e-4",
                                      f"--config.critic.features={RICH}"]),
    # Anchored: the stage-3 objective adds w * NLL (ac.elbo_weight), so the actor cannot leave
    # the likelihood to inflate the critic's features (the NLL rose 1202 -> 1269 without it).
    "lowrank_rich_anchor_1e-4": ("item_item_lowrank", "B0 frozen + U V (r 32), + 5 richer "
                                 "features, lr 1e-4, + 3e-4 x NLL in stage 3",
                                 ["--config.ac.actor_learning_rate=1e-4",
                                  f"--config.critic.features={RICH}",
                                  "--config.ac.elbo_weight=3e-4"]),
}


def command(data: str, name: str, workdir: str, epochs: tuple[int, int],
            seed: int | None = None) -> list[str]:
  preset, _, overrides = VARIANTS[name]
  seeded = [] if seed is None else [f"--config.seed={seed}"]
  return [sys.executable, "-m", "ract_jax.main", f"--config={DATA[data]}:{preset}",
          f"--workdir={workdir}", *COMMON, f"--config.schedule.critic_epochs={epochs[0]}",
          f"--config.schedule.ac_epochs={epochs[1]}", *overrides, *seeded]


def workdir_of(root: str, data: str, name: str, seed: int | None = None) -> str:
  """`<root>/<data>/<variant>` (the config's seed) or `..._seed<seed>`."""
  return os.path.join(root, data, name if seed is None else f"{name}_seed{seed}")


def run(args) -> None:
  for name in args.variants.split(","):
    workdir = workdir_of(args.root, args.data, name, args.seed)
    os.makedirs(workdir, exist_ok=True)
    cmd = command(args.data, name, workdir, (args.critic_epochs, args.ac_epochs), args.seed)
    print(" ".join(cmd[1:]), flush=True)
    with open(os.path.join(workdir, "stdout.log"), "a") as log:
      rc = subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                           env=dict(os.environ, PYTHONPATH=ROOT))
    print(f"{name}: exit {rc}", flush=True)


def _stage_rows(workdir: str) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def summarize(workdir: str) -> dict | None:
  """The table's row of one finished variant (None if it has not finished)."""
  if not os.path.exists(os.path.join(workdir, "finished.json")):
    return None
  with open(os.path.join(workdir, "results.json")) as f:
    res = json.load(f)
  before = np.load(os.path.join(workdir, "per_user_test_actor.npz"))
  after = np.load(os.path.join(workdir, "per_user_test_ract.npz"))
  has = before["n_heldout"] > 0
  diff = metrics.paired_difference(before["ndcg@100"][has], after["ndcg@100"][has])
  rows = _stage_rows(workdir)
  critic = [r for r in rows if r["stage"] == "critic"]
  sec = {s: float(np.mean([r["seconds"] for r in rows if r["stage"] == s]) if any(
      r["stage"] == s for r in rows) else float("nan")) for s in ("critic", "ac")}
  diag = res["ract"].get("diagnostics", {})
  return {"actor": res["actor"], "ract": res["ract"], "diff": diff,
          "critic_r": critic[-1]["val"].get("critic_r") if critic else float("nan"),
          "best_epoch": diag.get("best_global_epoch"), "best_stage": diag.get("best_stage"),
          "epochs": (len(critic), len([r for r in rows if r["stage"] == "ac"])), "seconds": sec,
          "ac_val": [r["val"]["ndcg@100"] for r in rows if r["stage"] == "ac"]}


def table(data: str, root: str) -> str:
  head = ("| variant | what | start (EASE) test NDCG@100 / R@20 / R@50 | after RaCT | gain NDCG@100 "
          "[95% paired] (better/worse users) | val NDCG@100 start -> selected | critic r (val) | "
          "selected epoch | s/epoch stage 2 / 3 |\n|---|---|---|---|---|---|---|---|---|")
  lines = [head]
  folder = os.path.join(root, data)
  seeded = sorted(d for d in (os.listdir(folder) if os.path.isdir(folder) else [])
                  if "_seed" in d and d.split("_seed")[0] in VARIANTS)
  rows = [(n, VARIANTS[n][1]) for n in VARIANTS] + [
      (d, VARIANTS[d.split("_seed")[0]][1] + f", --config.seed={d.split('_seed')[1]}")
      for d in seeded]
  for name, what in rows:
    s = summarize(os.path.join(root, data, name))
    if s is None:
      lines.append(f"| {name} | {what} | not run / not finished | | | | | | |")
      continue
    fmt = lambda r: (f"{r['test']['ndcg@100']:.4f} / {r['test']['recall@20']:.4f} / "
                     f"{r['test']['recall@50']:.4f}")
    d = s["diff"]
    lines.append(
        f"| {name} | {what} | {fmt(s['actor'])} | {fmt(s['ract'])} | {d['mean']:+.4f} "
        f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] ({d['n_better']}/{d['n_worse']}) | "
        f"{s['actor']['validation']['ndcg@100']:.4f} -> {s['ract']['validation']['ndcg@100']:.4f} | "
        f"{s['critic_r']:.3f} | global {s['best_epoch']} of {sum(s['epochs'])} ({s['best_stage']}) | "
        f"{s['seconds']['critic']:.1f} / {s['seconds']['ac']:.1f} |")
  return "\n".join(lines)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("what", choices=("run", "report"))
  p.add_argument("--data", default="ml1m", choices=tuple(DATA))
  p.add_argument("--variants", default=",".join(VARIANTS))
  p.add_argument("--root", default="runs/beyond", help="where the variants' workdirs go")
  p.add_argument("--critic_epochs", type=int, default=15)
  p.add_argument("--ac_epochs", type=int, default=12)
  p.add_argument("--out", default="")
  p.add_argument("--seed", type=int, default=None,
                 help="run: --config.seed (another seed of a variant, in <variant>_seed<seed>/)")
  args = p.parse_args(argv)
  for name in args.variants.split(","):
    if name not in VARIANTS:
      p.error(f"--variants: unknown {name!r}; known: {', '.join(VARIANTS)}")
  if args.what == "run":
    run(args)
    return
  text = table(args.data, args.root)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  main()
