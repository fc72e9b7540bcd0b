"""experiments/table2.py: the paper's Table 2 layout (before / after RaCT / gain per actor)."""

from __future__ import annotations

import json

import pytest

import fake_runs

t2 = fake_runs.load_experiment("table2.py")
VAE = {"kind": "multvae", "shape": "ract", "loss": "multinomial", "deterministic": False}
WARP = {"kind": "multdae", "shape": "linear", "loss": "warp"}


def _runs(tmp_path):
  vae = fake_runs.write_run(
      tmp_path / "vae", VAE,
      {"actor": {"test": fake_runs.summary(0.3, 0.4, 0.4258), "validation": {"ndcg@100": 0.41}},
       "ract": {"test": fake_runs.summary(0.31, 0.41, 0.4339), "validation": {"ndcg@100": 0.42}}},
      per_user=([0.4, 0.5, 0.2, 0.3], [0.5, 0.5, 0.1, 0.4]))
  warp = fake_runs.write_run(
      tmp_path / "warp", WARP, {"actor": {"test": fake_runs.summary(0.2, 0.3, 0.3123)}},
      stage_epochs=(4, 0, 0), stage_seconds=(8.0, 0.0, 0.0))
  return vae, warp


def test_rows_by_hand(tmp_path):
  vae, warp = _runs(tmp_path)
  rows = t2.build_table2([str(vae), str(warp)])
  assert [r["actor"] for r in rows] == ["VAE", "WARP"]
  r = rows[0]
  assert r["before"] == 0.4258 and r["after"] == 0.4339
  assert r["gain_e3"] == pytest.approx(8.1)  # the paper's Table 2 row for the VAE: 8.09 (rounded)
  # Paired differences +.1, 0, -.1, +.1: mean .025, better 2, worse 1.
  assert r["paired"]["mean"] == pytest.approx(0.025) and r["paired"]["n_better"] == 2
  assert r["paired"]["n_worse"] == 1
  assert r["epochs"] == {"actor": 3, "critic": 2, "ac": 2}
  assert r["train_seconds"]["ac"] == pytest.approx(3.0) and r["complete"]
  w = rows[1]  # stage 1 only: no RaCT yet
  assert w["after"] is None and w["gain"] is None and w["paired"] is None and not w["complete"]


def test_cli_markdown_and_json(tmp_path, capsys):
  vae, warp = _runs(tmp_path)
  t2.main([str(vae), str(warp), "--out", str(tmp_path / "out" / "t2")])
  md = (tmp_path / "out" / "t2.md").read_text()
  assert "| VAE | 0.4258 | 0.4339 | +8.10 |" in md
  assert "| WARP | 0.3123 | – | – |" in md
  data = json.loads((tmp_path / "out" / "t2.json").read_text())
  assert data[0]["gain_e3"] == pytest.approx(8.1) and data[1]["after"] is None
  assert "| VAE |" in capsys.readouterr().out


def test_refuses_runs_of_different_splits(tmp_path, capsys):
  vae, _ = _runs(tmp_path)
  other = fake_runs.write_run(tmp_path / "other", VAE,
                              {"actor": {"test": fake_runs.summary(0.2, 0.3, 0.3)}},
                              data={"heldout_users": 50})
  with pytest.raises(SystemExit):
    t2.main([str(vae), str(other), "--out", str(tmp_path / "t2")])
  err = capsys.readouterr().err
  assert "config.data.heldout_users" in err and "one split" in err
  assert not (tmp_path / "t2.md").exists()


def test_refuses_a_run_without_results(tmp_path, capsys):
  vae, _ = _runs(tmp_path)
  (vae / "results.json").unlink()
  with pytest.raises(SystemExit):
    t2.main([str(vae), "--out", str(tmp_path / "t2")])
  assert "results.json: missing or empty" in capsys.readouterr().err
