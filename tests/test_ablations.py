"""experiments/ablations.py: Figure 5's feature ablations and Table 6's Recall critic from one
pre-trained actor (the commands, the Markdown table, the PNG)."""

import json

import numpy as np
import pytest

import fake_runs

ab = fake_runs.load_experiment("ablations.py")
VAE = {"kind": "multvae", "shape": "ract", "loss": "multinomial"}


def _finished(path, gain):
  s = fake_runs.summary
  fake_runs.write_run(path, VAE, {
      "actor": {"test": s(0.38, 0.47, 0.45)},
      "ract": {"test": dict(s(0.38, 0.47, 0.45 + gain), **{"recall@100": 0.6}),
               "diagnostics": {"best_stage": "ac", "best_global_epoch": 4}}},
      stage_epochs=(0, 2, 2), per_user=(np.full(10, 0.45), np.full(10, 0.45) + gain))
  (path / "finished.json").write_text(json.dumps({"global_epochs": 4}))


def test_commands_switch_the_features_and_the_metric():
  cmd = ab.command("nll_only", "configs/x.py", "runs/vae", "runs/ab", 50, 20)
  assert "--config.critic.use_seen=False" in cmd and "--config.critic.use_unseen=False" in cmd
  assert "--config.pretrained_actor=runs/vae" in cmd and "--workdir=runs/ab/nll_only" in cmd
  assert cmd[-2:] == ["--config.schedule.critic_epochs=50", "--config.schedule.ac_epochs=20"]
  assert "--config.critic.metric=recall" in ab.command("recall", "c", "a", "r", None, None)


def test_report_only_writes_table_json_and_png(tmp_path):
  actor = tmp_path / "vae"
  (actor / "actor_best").mkdir(parents=True)
  _finished(tmp_path / "ab" / "all", 0.004)
  _finished(tmp_path / "ab" / "recall", 0.002)
  out = ab.main(["--pretrained_actor", str(actor), "--runs", str(tmp_path / "ab"),
                 "--variants", "all,recall,nll_only", "--report_only"])
  assert out["missing"] == ["nll_only"]
  rows = {r["variant"]: r for r in out["rows"]}
  assert rows["all"]["gain"] == pytest.approx(0.004) and rows["recall"]["recall@100"] == 0.6
  md = (tmp_path / "ab" / "ablations.md").read_text()
  assert "Recall@100 critic" in md and "+0.0040" in md
  assert (tmp_path / "ab" / "ablations.png").stat().st_size > 0
