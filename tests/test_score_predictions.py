"""Tests for experiments/score_predictions.py on a hand-made processed directory."""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import re

import numpy as np
import pandas as pd
import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "score_predictions.py"
_spec = importlib.util.spec_from_file_location("score_predictions", _PATH)
sp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sp)


def _disc(r: int) -> float:
  return 1.0 / math.log2(r + 1)


def _write_csv(path, pairs):
  pd.DataFrame(pairs, columns=["uid", "sid"]).to_csv(path, index=False)


@pytest.fixture
def processed(tmp_path):
  """Users 10 and 11 have held-out items; 12 only fold-in; 20 has 30 held-out items."""
  tr = [(10, 1), (10, 2), (11, 3), (12, 4), (20, 1)]
  te = [(10, 5), (10, 6), (11, 7)] + [(20, s) for s in range(100, 130)]
  _write_csv(tmp_path / "test_tr.csv", tr)
  _write_csv(tmp_path / "test_te.csv", te)
  _write_csv(tmp_path / "validation_tr.csv", [(30, 1)])
  _write_csv(tmp_path / "validation_te.csv", [(30, 2)])
  return tmp_path


def _write_preds(path, lines):
  path.write_text("".join(f"{uid}\t{','.join(map(str, items))}\n" for uid, items in lines))
  return str(path)


# Per-user answers for the predictions in `_main_preds`.
NDCG_10 = (1 + _disc(3)) / (1 + _disc(2))  # hits at ranks 1 and 3 of 2 held-out
NDCG_11 = 0.0  # its only held-out item (7) is not predicted
NDCG_20 = sum(_disc(r) for r in range(1, 21)) / sum(_disc(r) for r in range(1, 31))


def _main_preds(tmp_path):
  lines = [
      (10, [5, 9, 6]),
      (11, [8, 3]),  # 3 is a fold-in item of user 11
      (12, [1]),
      (99, [1]),  # not a test user
      (20, list(range(100, 120)) + list(range(200, 280))),  # 20 hits in the top 20, then misses
  ]
  return _write_preds(tmp_path / "a.tsv", lines)


def test_score_file_known_answers(processed, tmp_path):
  out = sp.score_file(_main_preds(tmp_path), str(processed))
  assert out["n_users"] == 3  # 12 has no held-out items
  assert out["ndcg@100"] == pytest.approx((NDCG_10 + NDCG_11 + NDCG_20) / 3, abs=1e-12)
  # Recall denominators min(k, n): user 20 has n = 30.
  assert out["recall@20"] == pytest.approx((1.0 + 0.0 + 20 / 20) / 3, abs=1e-12)
  assert out["recall@50"] == pytest.approx((1.0 + 0.0 + 20 / 30) / 3, abs=1e-12)
  vals = np.array([NDCG_10, NDCG_11, NDCG_20])
  assert out["ndcg@100_stderr"] == pytest.approx(np.std(vals) / math.sqrt(3), abs=1e-12)
  assert out["n_missing"] == 0
  assert out["n_extra"] == 1
  assert out["n_foldin_predicted"] == 1
  assert out["n_short"] == 4


def test_missing_user_scores_zero_and_only_top_100_counts(processed, tmp_path):
  # User 10 missing. User 20's held-out items sit at ranks 101-130: nothing counts.
  path = _write_preds(tmp_path / "b.tsv", [(11, [7]), (20, list(range(200, 300)) +
                                                         list(range(100, 130)))])
  out = sp.score_file(path, str(processed))
  assert out["n_missing"] == 1
  assert out["ndcg@100"] == pytest.approx((0.0 + 1.0 + 0.0) / 3, abs=1e-12)
  assert out["recall@20"] == pytest.approx(1 / 3, abs=1e-12)


def test_validation_split_and_header(processed, tmp_path):
  path = tmp_path / "v.tsv"
  path.write_text("uid\tsids\n30\t9,2\n")
  out = sp.score_file(str(path), str(processed), split="validation")
  assert out["n_users"] == 1
  assert out["ndcg@100"] == pytest.approx(_disc(2), abs=1e-12)
  assert out["recall@20"] == 1.0


def test_malformed_predictions_raise(processed, tmp_path):
  with pytest.raises(ValueError, match="repeated item"):
    sp.score_file(_write_preds(tmp_path / "d.tsv", [(10, [5, 5])]), str(processed))
  with pytest.raises(ValueError, match="twice"):
    sp.score_file(_write_preds(tmp_path / "e.tsv", [(10, [5]), (10, [6])]), str(processed))
  bad = tmp_path / "f.tsv"
  bad.write_text("10 5,6\n")
  with pytest.raises(ValueError, match="expected"):
    sp.score_file(str(bad), str(processed))


def test_paired_difference(processed, tmp_path):
  a = _main_preds(tmp_path)
  b = _write_preds(tmp_path / "b.tsv", [(10, [6, 5]), (11, [7]), (20, list(range(200, 300)))])
  per_user = tmp_path / "pairs.tsv"
  out = sp.paired_difference(a, b, str(processed), per_user_out=str(per_user))
  d = np.array([NDCG_10 - 1.0, NDCG_11 - 1.0, NDCG_20 - 0.0])
  sd = np.std(d, ddof=1)
  assert out["n_users"] == 3
  assert out["mean_diff"] == pytest.approx(d.mean(), abs=1e-12)
  assert out["sd_diff"] == pytest.approx(sd, abs=1e-12)
  half = 1.96 * sd / math.sqrt(3)
  assert out["ci95"] == pytest.approx([d.mean() - half, d.mean() + half], abs=1e-12)
  assert (out["n_better"], out["n_worse"], out["n_equal"]) == (1, 2, 0)
  table = pd.read_csv(per_user, sep="\t", dtype={"uid": str})
  assert list(table["uid"]) == ["10", "11", "20"]
  np.testing.assert_allclose(table["diff"], d, atol=1e-12)


def test_cli_prints_json(processed, tmp_path, capsys):
  a = _main_preds(tmp_path)
  sp.main([a, str(processed)])
  out = json.loads(capsys.readouterr().out)
  assert out["ndcg@100"] == pytest.approx((NDCG_10 + NDCG_11 + NDCG_20) / 3, abs=1e-12)
  sp.main([a, str(processed), "--paired", a])
  out = json.loads(capsys.readouterr().out)
  assert out["paired"]["mean_diff"] == 0.0 and out["paired"]["n_equal"] == 3


def test_does_not_import_ract_jax():
  src = _PATH.read_text()
  assert not re.search(r"^\s*(import|from)\s+ract_jax", src, re.MULTILINE)


def test_agrees_with_ract_jax_metrics(tmp_path):
  """The independent evaluator and ract_jax.metrics agree on random scores."""
  from ract_jax import metrics  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  n_users, n_items = 25, 300
  foldin = rng.rand(n_users, n_items) < 0.1
  heldout = (rng.rand(n_users, n_items) < 0.08) & ~foldin
  heldout[3] = False  # only fold-in: skipped by both
  scores = rng.randn(n_users, n_items).astype(np.float32) + heldout
  scores[foldin] = -np.inf
  uids = np.arange(n_users) + 1000
  tr = [(uids[u], i) for u, i in zip(*np.nonzero(foldin))]
  te = [(uids[u], i) for u, i in zip(*np.nonzero(heldout))]
  _write_csv(tmp_path / "test_tr.csv", tr)
  _write_csv(tmp_path / "test_te.csv", te)
  top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
  path = _write_preds(tmp_path / "p.tsv", [(uids[u], top[u]) for u in range(n_users)])
  out = sp.score_file(path, str(tmp_path))
  want = metrics.ranking_metrics(scores, heldout.astype(np.float32), ndcg_ks=(100,),
                                 recall_ks=(20, 50))
  assert out["n_users"] == metrics.summarize(want["ndcg@100"], want["n_heldout"])["n_users"]
  assert out["n_foldin_predicted"] == 0
  for name in ("ndcg@100", "recall@20", "recall@50"):
    s = metrics.summarize(np.asarray(want[name]), np.asarray(want["n_heldout"]))
    assert out[name] == pytest.approx(s["mean"], abs=1e-6)
