"""Evaluates a saved model on held-out users in raw ids, with the training's evaluator and metrics.

  python -m ract_jax.evaluate_model --workdir=W --fold_in=FOLD.tsv --held_out=HELD.tsv
      [--output=metrics.json] [--batch_size=2000]

Both files have the recommend input's format (`user<TAB>item[<TAB>rating]`, raw ids, an optional
header `user<TAB>item`): FOLD holds what the model sees of each user (Liang et al.'s 80%), HELD
what it must rank (the 20%). The model scores each user's fold-in row, its fold-in items set to
-inf, and `evaluate.Evaluator` computes NDCG@k and Recall@k at model.json's cut-offs exactly as in
training (`evaluate.summarize`: means and standard errors over users with held-out items). Users
only in HELD have an empty fold-in; items the model does not know are left out of both parts (a
warning gives the counts: a held-out item it cannot score is not counted as a miss).

Prints one line per metric and, with --output, writes the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

import numpy as np
import pandas as pd

from ract_jax import evaluate, histories as histories_lib, model_io
from ract_jax.data.csr import CSR, HeldOut
from ract_jax.data.errors import DataError
from ract_jax.device import parallel
from ract_jax.recommend import fail

logger = logging.getLogger("ract_jax.evaluate_model")


def _rows_as(rows: histories_lib.Histories, users: pd.Index) -> CSR:
  """`rows.items` re-indexed to the row order of `users` (a superset of `rows.users`)."""
  where = users.get_indexer(pd.Index(rows.users, dtype=object))
  lengths = rows.items.row_lengths()
  return CSR.from_pairs(np.repeat(where, lengths), rows.items.indices, len(users),
                        rows.items.n_items)


def held_out_split(fold_in: histories_lib.Histories,
                   held_out: histories_lib.Histories) -> tuple[HeldOut, list]:
  """The `HeldOut` split of the users of both parts (fold-in users first, in their order).

  Returns:
    (the split, its users' raw ids in row order).
  """
  users = pd.Index(fold_in.users, dtype=object)
  users = users.append(pd.Index(held_out.users, dtype=object).difference(users, sort=False))
  split = HeldOut(uids=np.arange(len(users), dtype=np.int64), fold_in=_rows_as(fold_in, users),
                  held_out=_rows_as(held_out, users))
  return split, users.tolist()


def evaluate_saved(model: model_io.SavedModel, split: HeldOut, batch_size: int = 2000) -> dict:
  """Per-user metrics of `model` on `split` (`evaluate.Evaluator.run` with the evaluation's
  actor scoring, `evaluate.actor_score_fn`), on every device of a 1-D mesh."""
  ev = model.info.get("eval", {})
  evaluator = evaluate.Evaluator(split, parallel.make_mesh(),
                                 batch_size=evaluate.batch_size_for([split], batch_size),
                                 ndcg_ks=tuple(ev.get("ndcg_ks", (10, 20, 50, 100, 200))),
                                 recall_ks=tuple(ev.get("recall_ks", (10, 20, 50, 100))))
  return evaluator.run(evaluate.actor_score_fn(model.actor_config), model.params)


def main(argv: Sequence[str] | None = None) -> dict:
  ap = argparse.ArgumentParser(prog="python -m ract_jax.evaluate_model",
                               description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", required=True, help="a training run's workdir (its model/ folder)")
  ap.add_argument("--fold_in", required=True, help="what the model sees: user<TAB>item lines")
  ap.add_argument("--held_out", required=True, help="what it must rank: user<TAB>item lines")
  ap.add_argument("--output", default=None, help="write the summary here as JSON")
  ap.add_argument("--batch_size", type=int, default=2000, help="users per evaluation batch")
  args = ap.parse_args(argv)
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
  try:
    model = model_io.read(args.workdir)
    print(model.describe(), file=sys.stderr)
    parts = {name: histories_lib.read_tsv(path, model)
             for name, path in (("fold-in", args.fold_in), ("held-out", args.held_out))}
    for name, rows in parts.items():
      for note in rows.notes():
        logger.warning("%s: %s.", name, note)
    split, _ = held_out_split(parts["fold-in"], parts["held-out"])
    summary = evaluate.summarize(evaluate_saved(model, split, args.batch_size))
    summary.update(model=model.name, n_unknown={k: v.n_unknown for k, v in parts.items()},
                   n_below_threshold={k: v.n_below_threshold for k, v in parts.items()})
    if args.output:
      with open(args.output, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
  except (model_io.ModelError, DataError, ValueError, OSError) as e:
    fail(str(e))
  print(f"{summary['n_users']:,} users with held-out items ({summary['n_skipped']:,} without, "
        "skipped)")
  names = [n for n in summary if "@" in n and not n.endswith("_se")]
  for name in sorted(names, key=lambda n: (n.split("@")[0], int(n.split("@")[1]))):
    print(f"{name:<10} {summary[name]:.4f} ± {summary[name + '_se']:.4f}")
  return summary


if __name__ == "__main__":
  main()
