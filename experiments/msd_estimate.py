"""Extrapolates a short run's epoch times (metrics.jsonl) to the full MSD schedule.

  python experiments/msd_estimate.py --workdir=RUN [--json=out.json]

Per stage, the training seconds per training user (`seconds`, the jitted epoch) and the validation
seconds per validation user (`val_seconds`) are averaged over the stage's epochs after its first
(the first compiles; a stage with one epoch is used as it is, compile included, and says so), then
multiplied by MSD's users (paper Table 3: 571,355 users, 50,000 validation and 50,000 test, so
471,355 training users) and by the epochs of Table 5 (75 / 50 / 25). Baselines, data preparation,
compilation and the final test evaluation are not included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

STAGES = ("actor", "critic", "ac")
MSD_TRAIN_USERS = 571_355 - 2 * 50_000
MSD_VAL_USERS = 50_000
MSD_EPOCHS = (75, 50, 25)


def read_rows(workdir: str) -> list[dict]:
  """The rows of `<workdir>/metrics.jsonl` (a torn last line is dropped)."""
  rows = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        pass
  return rows


def estimate(rows: list[dict], train_users: int = MSD_TRAIN_USERS,
             val_users: int = MSD_VAL_USERS, epochs=MSD_EPOCHS) -> dict:
  """Per-stage and total extrapolated seconds.

  Args:
    rows: metrics.jsonl rows (each with stage, seconds, users_per_s, val_seconds, val.n_users).
    train_users, val_users: the target's training and validation users.
    epochs: the target's epochs per stage.

  Returns:
    `{stage: {...}, "total_s": float}`; a stage absent from `rows` is left out (and named in
    `"missing"`).
  """
  out, total, missing = {}, 0.0, []
  for stage, n_epochs in zip(STAGES, epochs):
    mine = [r for r in rows if r["stage"] == stage]
    if not mine:
      missing.append(stage)
      continue
    timed = mine[1:] or mine
    users = [r["seconds"] * r["users_per_s"] for r in timed]
    train_per_user = sum(r["seconds"] / u for r, u in zip(timed, users)) / len(timed)
    val = [r["val_seconds"] / max(1, r["val"]["n_users"]) for r in timed if "val_seconds" in r]
    val_per_user = sum(val) / len(val) if val else 0.0
    epoch_s = train_per_user * train_users + val_per_user * val_users
    out[stage] = {"epochs_timed": len(timed), "compile_included": len(mine) == 1,
                  "train_s_per_epoch": train_per_user * train_users,
                  "val_s_per_epoch": val_per_user * val_users, "epoch_s": epoch_s,
                  "epochs": n_epochs, "stage_s": epoch_s * n_epochs,
                  "measured_train_users": users[0], "measured_train_s": timed[-1]["seconds"]}
    total += epoch_s * n_epochs
  out["total_s"] = total
  if missing:
    out["missing"] = missing
  return out


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--train_users", type=int, default=MSD_TRAIN_USERS)
  ap.add_argument("--val_users", type=int, default=MSD_VAL_USERS)
  ap.add_argument("--epochs", default=",".join(map(str, MSD_EPOCHS)))
  ap.add_argument("--json", default="")
  args = ap.parse_args(argv)
  est = estimate(read_rows(args.workdir), args.train_users, args.val_users,
                 tuple(int(e) for e in args.epochs.split(",")))
  print(f"extrapolated to {args.train_users:,} training / {args.val_users:,} validation users, "
        f"epochs {args.epochs} (compile, baselines and the final test excluded):")
  for stage in STAGES:
    if stage in est:
      e = est[stage]
      note = " (one epoch: compile included)" if e["compile_included"] else ""
      print(f"  {stage:6s} {e['epoch_s']:8.1f} s/epoch (train {e['train_s_per_epoch']:.1f}, "
            f"validation {e['val_s_per_epoch']:.1f}) x {e['epochs']} = {e['stage_s'] / 60:6.1f} "
            f"min{note}")
  print(f"  total  {est['total_s'] / 60:.1f} min" +
        (f"; stages missing: {est['missing']}" if "missing" in est else ""))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(est, f, indent=2)
  return 1 if "missing" in est else 0


if __name__ == "__main__":
  sys.exit(main())
