"""Independent evaluator: scores a top-100 predictions file against the Liang held-out CSVs.

Pure numpy/pandas; deliberately does not import `ract_jax` so that it cross-checks
`ract_jax.metrics` and the evaluation pipeline.

Predictions file: one line per user, `uid<TAB>sid,sid,...`, the recommended item ids in rank order
(top 100), uid and sid as in the processed directory's Liang CSVs. A first line starting with
`uid` and lines starting with `#` are ignored. Metrics (Liang / RaCT definitions):
  * NDCG@100: binary gains, discount 1/log2(rank + 1), IDCG over min(n_heldout, 100) ranks.
  * Recall@k: hits in the first k / min(k, n_heldout).
Means are over the users with at least one held-out item (rows of `<split>_te.csv`); a user with
no prediction line scores 0 and is counted in `n_missing`. The output also counts predicted items
that are the user's own fold-in items (`n_foldin_predicted`; should be 0, fold-in items are
excluded from ranking) and prediction lines of users outside the split (`n_extra`).

Usage:
  python experiments/score_predictions.py PRED.tsv PROCESSED_DIR [--split test]
  python experiments/score_predictions.py PRED.tsv PROCESSED_DIR --paired OTHER.tsv
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np
import pandas as pd

NDCG_K = 100
RECALL_KS = (20, 50)


def read_predictions(path: str) -> dict[str, list[str]]:
  """Reads `uid<TAB>sid,sid,...` lines into {uid: [sid, ...]} (ids kept as strings).

  Raises:
    ValueError: on a malformed line, a repeated uid or an item repeated within a line.
  """
  preds: dict[str, list[str]] = {}
  with open(path) as f:
    for line_no, line in enumerate(f, 1):
      line = line.rstrip("\r\n")
      if not line.strip() or line.startswith("#"):
        continue
      if line_no == 1 and line.lower().startswith("uid"):
        continue
      uid, sep, rest = line.partition("\t")
      uid = uid.strip()
      if not sep or not uid:
        raise ValueError(f"{path}:{line_no}: expected 'uid<TAB>sid,sid,...', got {line[:80]!r}")
      items = [s.strip() for s in rest.split(",") if s.strip()]
      if uid in preds:
        raise ValueError(f"{path}:{line_no}: uid {uid} appears twice")
      if len(set(items)) != len(items):
        raise ValueError(f"{path}:{line_no}: uid {uid} has a repeated item")
      preds[uid] = items
  return preds


def _read_split(processed_dir: str, split: str) -> tuple[dict, dict]:
  """{uid: set(sid)} for `<split>_tr.csv` (fold-in) and `<split>_te.csv` (held-out)."""
  out = []
  for part in ("tr", "te"):
    df = pd.read_csv(os.path.join(processed_dir, f"{split}_{part}.csv"), dtype=str)
    df["uid"] = df["uid"].str.strip()
    df["sid"] = df["sid"].str.strip()
    out.append({uid: set(g) for uid, g in df.groupby("uid", sort=False)["sid"]})
  return out[0], out[1]


def _user_metrics(ranked: list[str], relevant: set) -> tuple[float, dict]:
  n = len(relevant)
  hits = np.array([s in relevant for s in ranked[:max(NDCG_K, *RECALL_KS)]], np.float64)
  disc = 1.0 / np.log2(np.arange(2, NDCG_K + 2))
  top = hits[:NDCG_K]
  dcg = float(np.sum(top * disc[:len(top)]))
  idcg = float(np.sum(disc[:min(n, NDCG_K)]))
  recalls = {k: float(hits[:k].sum()) / min(k, n) for k in RECALL_KS}
  return dcg / idcg, recalls


def per_user_scores(predictions_tsv: str, processed_dir: str, split: str = "test") -> dict:
  """Per-user metrics for every user with at least one held-out item.

  Args:
    predictions_tsv: predictions file (see module docstring).
    processed_dir: directory with `<split>_tr.csv` and `<split>_te.csv` (`uid,sid` columns).
    split: 'test' or 'validation'.

  Returns:
    dict with `uids` (sorted held-out users, strings), `ndcg@100` and `recall@k` float64 arrays
    aligned with `uids`, and the counts `n_missing`, `n_extra`, `n_foldin_predicted`, `n_short`
    (lines with fewer than 100 items).
  """
  preds = read_predictions(predictions_tsv)
  fold_in, held_out = _read_split(processed_dir, split)
  uids = sorted(held_out, key=lambda u: (len(u), u))  # numeric order for integer ids
  ndcg = np.zeros(len(uids))
  recall = {k: np.zeros(len(uids)) for k in RECALL_KS}
  n_missing = 0
  for i, uid in enumerate(uids):
    if uid not in preds:
      n_missing += 1
      continue
    ndcg[i], r = _user_metrics(preds[uid], held_out[uid])
    for k in RECALL_KS:
      recall[k][i] = r[k]
  known = set(fold_in) | set(held_out)
  n_foldin = sum(len(set(items[:NDCG_K]) & fold_in.get(uid, set())) for uid, items in preds.items())
  out = {"uids": uids, f"ndcg@{NDCG_K}": ndcg}
  out.update({f"recall@{k}": recall[k] for k in RECALL_KS})
  out.update(n_missing=n_missing, n_extra=sum(u not in known for u in preds),
             n_foldin_predicted=int(n_foldin),
             n_short=sum(len(v) < NDCG_K for v in preds.values()))
  return out


def score_file(predictions_tsv: str, processed_dir: str, split: str = "test") -> dict:
  """Mean NDCG@100, Recall@20 and Recall@50 over users with at least one held-out item.

  Args:
    predictions_tsv: predictions file (see module docstring).
    processed_dir: directory with `<split>_tr.csv` and `<split>_te.csv`.
    split: 'test' or 'validation'.

  Returns:
    JSON-serialisable dict: `ndcg@100`, `recall@20`, `recall@50` (means), `ndcg@100_stderr`
    (population std / sqrt(n), as Liang), `n_users`, and the counts of `per_user_scores`.
  """
  s = per_user_scores(predictions_tsv, processed_dir, split)
  n = len(s["uids"])
  out = {"split": split, "n_users": n}
  for name in [f"ndcg@{NDCG_K}"] + [f"recall@{k}" for k in RECALL_KS]:
    out[name] = float(np.mean(s[name])) if n else float("nan")
  out[f"ndcg@{NDCG_K}_stderr"] = float(np.std(s[f"ndcg@{NDCG_K}"]) / math.sqrt(n)) if n else float(
      "nan")
  for key in ("n_missing", "n_extra", "n_foldin_predicted", "n_short"):
    out[key] = int(s[key])
  return out


def paired_difference(predictions_tsv: str, other_tsv: str, processed_dir: str,
                      split: str = "test", per_user_out: str | None = None) -> dict:
  """Paired per-user NDCG@100 difference (`predictions_tsv` minus `other_tsv`).

  Args:
    predictions_tsv: file A.
    other_tsv: file B (e.g. the actor's predictions when A is RaCT's).
    processed_dir: directory with `<split>_tr.csv` and `<split>_te.csv`.
    split: 'test' or 'validation'.
    per_user_out: optional path; writes `uid, ndcg_a, ndcg_b, diff` (TSV with header) per user.

  Returns:
    dict with `mean_diff`, `sd_diff` (sample sd, ddof=1), `ci95` = mean -/+ 1.96 sd / sqrt(n)
    (normal approximation), `n_users`, the two means, and how many users improved / got worse.
  """
  a = per_user_scores(predictions_tsv, processed_dir, split)
  b = per_user_scores(other_tsv, processed_dir, split)
  key = f"ndcg@{NDCG_K}"
  d = a[key] - b[key]
  n = int(d.shape[0])
  if per_user_out:
    pd.DataFrame({"uid": a["uids"], "ndcg_a": a[key], "ndcg_b": b[key], "diff": d}).to_csv(
        per_user_out, sep="\t", index=False)
  mean = float(d.mean()) if n else float("nan")
  sd = float(d.std(ddof=1)) if n > 1 else float("nan")
  half = 1.96 * sd / math.sqrt(n) if n > 1 else float("nan")
  return {
      "metric": key, "split": split, "n_users": n,
      "mean_a": float(a[key].mean()) if n else float("nan"),
      "mean_b": float(b[key].mean()) if n else float("nan"),
      "mean_diff": mean, "sd_diff": sd, "ci95": [mean - half, mean + half],
      "n_better": int((d > 0).sum()), "n_worse": int((d < 0).sum()), "n_equal": int((d == 0).sum()),
  }


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("predictions", help="uid<TAB>sid,sid,... file (top-100 in rank order)")
  p.add_argument("processed_dir", help="directory with <split>_tr.csv and <split>_te.csv")
  p.add_argument("--split", default="test", choices=("test", "validation"))
  p.add_argument("--paired", metavar="OTHER_TSV", default=None,
                 help="also print the paired per-user NDCG@100 difference (file minus OTHER)")
  p.add_argument("--paired_out", metavar="TSV", default=None,
                 help="with --paired: write uid, ndcg_a, ndcg_b, diff per user to this file")
  args = p.parse_args(argv)
  result = score_file(args.predictions, args.processed_dir, args.split)
  if args.paired:
    result = {"scores": result,
              "paired": paired_difference(args.predictions, args.paired, args.processed_dir,
                                          args.split, per_user_out=args.paired_out)}
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
