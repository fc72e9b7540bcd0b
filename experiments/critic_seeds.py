"""Is the critic alive? Stage 2 from one pre-trained actor, for several critic seeds and both
feature normalisations, reporting the critic's Pearson r with the oracle NDCG@100.

  python experiments/critic_seeds.py --config=configs/ml1m_implicit.py --pretrained=W \
      --seeds=0,1,2 --normalize=batchnorm,none --critic_epochs=50 --out=W/critic_seeds

`W` is the workdir of a run that finished stage 1 (it holds `actor_best/`). Each (normalize, seed)
pair runs stage 2 only (`ac_epochs=0`) in `OUT/<normalize>-seed<k>` through the normal trainer, and
the table reads the last epoch of its `metrics.jsonl`: r on training batches (the issue's criterion:
>= 0.5 at the end of stage 2), r on validation users, and the output's standard deviation (a dead
critic has std ~ 0). With `normalize=none` (the authors' code: raw features) the sigmoid can
saturate at initialisation, which this shows per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from ract_jax.config_base import load as load_config  # noqa: E402


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--config", required=True)
  ap.add_argument("--pretrained", required=True, help="workdir with actor_best/")
  ap.add_argument("--seeds", default="0,1,2")
  ap.add_argument("--normalize", default="batchnorm,none")
  ap.add_argument("--critic_epochs", type=int, default=50)
  ap.add_argument("--out", required=True)
  args = ap.parse_args()

  from ract_jax.train import trainer

  rows = []
  for normalize in args.normalize.split(","):
    for seed in [int(s) for s in args.seeds.split(",")]:
      c = load_config(args.config)
      c.pretrained_actor = args.pretrained
      c.schedule.critic_epochs, c.schedule.ac_epochs = args.critic_epochs, 0
      c.critic.seed, c.critic.normalize = seed, normalize
      c.baselines.names = ()
      workdir = os.path.join(args.out, f"{normalize}-seed{seed}")
      trainer.train_and_evaluate(c, workdir)
      with open(os.path.join(workdir, "metrics.jsonl")) as f:
        last = [json.loads(line) for line in f][-1]
      rows.append({"normalize": normalize, "seed": seed, "train_r": last["critic_r"],
                   "train_std": last["critic_std"], "train_mse": last["mse"],
                   "val_r": last["val"]["critic_r"], "val_mse": last["val"]["critic_mse"]})
  lines = ["| normalize | seed | r (train batches) | output std | MSE | r (validation) |",
           "|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['normalize']} | {r['seed']} | {r['train_r']:.3f} | {r['train_std']:.4f} | "
                 f"{r['train_mse']:.5f} | {r['val_r']:.3f} |")
  table = "\n".join(lines)
  print(table)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "critic_seeds.md"), "w") as f:
    f.write(table + "\n")
  with open(os.path.join(args.out, "critic_seeds.json"), "w") as f:
    json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
