"""Tests for experiments/compare_runs.py on two hand-made workdirs."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import numpy as np

_PATH = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "compare_runs.py"
_spec = importlib.util.spec_from_file_location("ract_experiments_compare_runs", _PATH)
cr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cr)


def _workdir(path, ndcg=0.45, seconds=1.0, top="1\t5 7\n"):
  path.mkdir()
  (path / "results.json").write_text(json.dumps(
      {"ract": {"test": {"ndcg@100": ndcg}, "seconds": seconds}}))
  (path / "metrics.jsonl").write_text("".join(
      json.dumps({"epoch": e, "nll": 1.5, "seconds": seconds * e, "users_per_s": 9.0 / seconds,
                  "val": {"ndcg@100": ndcg}}) + "\n" for e in (1, 2)))
  (path / "predictions_test.tsv").write_text(top)
  np.savez(path / "per_user_test_ract.npz", ndcg=np.array([ndcg, 0.1]))
  return str(path)


def test_timings_differ_only(tmp_path, capsys):
  a, b = _workdir(tmp_path / "a"), _workdir(tmp_path / "b", seconds=3.0)
  assert cr.main([a, b]) == 0
  assert "all identical" in capsys.readouterr().out


def test_a_moved_number_and_a_changed_list_are_found(tmp_path, capsys):
  a = _workdir(tmp_path / "a")
  b = _workdir(tmp_path / "b", ndcg=0.4500001, top="1\t7 5\n")
  assert cr.main([a, b]) == 1
  out = capsys.readouterr().out
  assert "results.json: 1 differences" in out and "ract.test.ndcg@100" in out
  assert "metrics.jsonl: 2 differences" in out
  assert "predictions_test.tsv: 1 differences" in out and "per_user_test_ract.npz: 1" in out


def test_a_missing_file_and_bad_arguments(tmp_path, capsys):
  a, b = _workdir(tmp_path / "a"), _workdir(tmp_path / "b")
  (tmp_path / "b" / "predictions_test.tsv").unlink()
  assert cr.main([a, b]) == 1
  assert "predictions_test.tsv: only in" in capsys.readouterr().out
  assert cr.main([a]) == 2
  assert "give two workdirs" in capsys.readouterr().err
