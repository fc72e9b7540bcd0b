"""experiments/table1.py: the paper's Table 1 layout (all methods, three metrics)."""

from __future__ import annotations

import json

import pytest

import fake_runs

t1 = fake_runs.load_experiment("table1.py")
VAE = {"kind": "multvae", "shape": "ract", "loss": "multinomial", "deterministic": False}
LAMBDARANK = {"kind": "multvae", "shape": "ract", "loss": "lambdarank"}
S = fake_runs.summary


def _runs(tmp_path, wmf_ndcg=0.386):
  vae = fake_runs.write_run(tmp_path / "vae", VAE, {
      "ract": {"test": S(0.403, 0.543, 0.434)}, "actor": {"test": S(0.396, 0.536, 0.426)},
      "ease": {"lambda": 500.0, "test": S(0.391, 0.521, 0.420)},
      "popularity": {"hyperparameters": {}, "test": S(0.1, 0.2, 0.15)}})
  lr = fake_runs.write_run(tmp_path / "lambdarank", LAMBDARANK, {
      "actor": {"test": S(0.395, 0.534, 0.427)},
      "wmf": {"hyperparameters": {"k": 100, "alpha": 2.0}, "test": S(0.36, 0.498, wmf_ndcg),
              "seconds": 12.5},
      "popularity": {"hyperparameters": {}, "test": S(0.1, 0.2, 0.15)}},
      stage_epochs=(3, 0, 0))
  return vae, lr


def test_rows_order_names_and_dedup(tmp_path):
  vae, lr = _runs(tmp_path)
  rows, notes = t1.build_table1([str(vae), str(lr)])
  assert [r["method"] for r in rows] == ["RaCT (VAE)", "VAE", "LambdaRank", "EASE", "WMF",
                                         "Popularity"]
  assert notes == []
  assert rows[0]["ndcg@100"] == 0.434 and rows[0]["selected"] == "stage-3 epoch 2"
  assert rows[1]["selected"] == "stage-1 epoch 3" and rows[1]["train_seconds"] == pytest.approx(2)
  assert rows[3]["hyperparameters"] == {"lam": 500.0}  # old results.json: "lambda"
  assert rows[4]["seconds"] == 12.5 and rows[4]["run"] == "lambdarank"
  assert rows[5]["run"] == "vae"  # listed once, from the first run that has it


def test_markdown_bolds_the_best(tmp_path):
  vae, lr = _runs(tmp_path)
  rows, _ = t1.build_table1([str(vae), str(lr)])
  md = t1.to_markdown(rows)
  assert "| RaCT (VAE) | **0.4030 ± 0.0010** | **0.5430 ± 0.0010** | **0.4340 ± 0.0010** |" in md
  assert "| WMF | 0.3600 ± 0.0010 | 0.4980 ± 0.0010 | 0.3860 ± 0.0010 | alpha=2, k=100 | 12 " in md


def test_baseline_that_differs_between_runs_is_noted(tmp_path):
  vae, lr = _runs(tmp_path)
  other = fake_runs.write_run(tmp_path / "again", VAE, {
      "actor": {"test": S(0.396, 0.536, 0.426)},
      "wmf": {"hyperparameters": {"k": 100}, "test": S(0.36, 0.498, 0.300)}})
  rows, notes = t1.build_table1([str(vae), str(lr), str(other)])
  assert [r["ndcg@100"] for r in rows if r["method"] == "WMF"] == [0.386]
  assert len(notes) == 1 and "WMF" in notes[0] and "again" in notes[0]


def test_cli_writes_both_files(tmp_path):
  vae, lr = _runs(tmp_path)
  t1.main([str(vae), str(lr), "--out", str(tmp_path / "t1")])
  data = json.loads((tmp_path / "t1.json").read_text())
  assert [r["method"] for r in data["rows"]][:3] == ["RaCT (VAE)", "VAE", "LambdaRank"]
  assert "# Table 1" in (tmp_path / "t1.md").read_text()


def test_baseline_runs_contribute_only_baselines(tmp_path):
  vae, lr = _runs(tmp_path)
  rows, _ = t1.build_table1([str(vae)], baseline_runs=[str(lr)])
  assert [r["method"] for r in rows] == ["RaCT (VAE)", "VAE", "EASE", "WMF", "Popularity"]
  t1.main([str(vae), "--baseline-runs", str(lr), "--out", str(tmp_path / "t1")])
  assert "LambdaRank" not in (tmp_path / "t1.md").read_text()


def test_finetuned_l2r_rows(tmp_path):
  """Table 1's WARP / LambdaRank rows are fine-tuned Mult-VAEs (`results["ft"]`), named for the
  loss, with the selected fine-tuning epoch; their (pre-trained VAE) actor is not listed again."""
  vae, _ = _runs(tmp_path)
  ft = fake_runs.write_run(tmp_path / "vae_warp_ft", VAE, {
      "actor": {"test": S(0.396, 0.536, 0.426)},
      "ft": {"test": S(0.31, 0.45, 0.35), "objective": "warp", "best_global_epoch": 2}},
      stage_epochs=(0, 0, 3))
  rows, _ = t1.build_table1([str(vae), str(ft)])
  assert [r["method"] for r in rows][:3] == ["RaCT (VAE)", "WARP (VAE fine-tuned)", "VAE"]
  assert rows[1]["kind"] == "ft" and rows[1]["ndcg@100"] == 0.35
  assert rows[1]["selected"] == "fine-tuning epoch 2"
