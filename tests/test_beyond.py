"""experiments/beyond.py: the commands it runs (stage 1 skipped, the variant's preset and
overrides) and its results table on fake finished workdirs (paired interval by hand)."""

import json

import numpy as np
import pytest

import fake_runs

beyond = fake_runs.load_experiment("beyond.py")


def test_command_skips_stage_1_and_uses_the_preset():
  cmd = beyond.command("ml1m", "lowrank_rich_1e-4", "/w", (3, 4))
  assert "--config=configs/ml1m_implicit.py:item_item_lowrank" in cmd
  assert "--config.schedule.actor_epochs=0" in cmd and "--workdir=/w" in cmd
  assert "--config.schedule.critic_epochs=3" in cmd and "--config.schedule.ac_epochs=4" in cmd
  assert "--config.ac.actor_learning_rate=1e-4" in cmd


def test_table_rows_with_paired_interval_by_hand(tmp_path):
  name = "full_rich_1e-6"
  s = fake_runs.summary
  results = {"actor": {"validation": s(0.4, 0.5, 0.47), "test": s(0.42, 0.50, 0.49)},
             "ract": {"validation": s(0.4, 0.5, 0.48), "test": s(0.43, 0.51, 0.495),
                      "diagnostics": {"best_global_epoch": 5, "best_stage": "ac"}}}
  before, after = [0.1, 0.2, 0.3, 0.4], [0.2, 0.2, 0.4, 0.5]
  w = fake_runs.write_run(tmp_path / "ml1m" / name, {"kind": "item_item"}, results,
                          stage_epochs=(0, 2, 3), per_user=(before, after))
  rows = [json.loads(line) for line in (w / "metrics.jsonl").read_text().splitlines()]
  for r in rows:
    r["val"]["critic_r"] = 0.5
  (w / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  (w / "finished.json").write_text("{}")
  text = beyond.table("ml1m", str(tmp_path))
  d = np.array(after) - np.array(before)  # 0.1, 0, 0.1, 0.1
  half = 1.96 * d.std(ddof=1) / 2
  row = [line for line in text.splitlines() if line.startswith(f"| {name} ")][0]
  assert f"+0.0750 [{0.075 - half:+.4f}, {0.075 + half:+.4f}] (3/0)" in row
  assert "0.4900 / 0.4200 / 0.5000" in row and "0.4950 / 0.4300 / 0.5100" in row
  assert "0.500" in row and "global 5 of 5 (ac)" in row
  assert text.count("not run") == len(beyond.VARIANTS) - 1


def test_unknown_variant_is_refused():
  with pytest.raises(SystemExit):
    beyond.main(["report", "--variants=nope"])


def test_seeded_runs_get_their_own_workdir():
  assert beyond.workdir_of("/r", "ml1m", "v") == "/r/ml1m/v"
  assert beyond.workdir_of("/r", "ml1m", "v", 2) == "/r/ml1m/v_seed2"
  assert beyond.command("ml1m", "lowrank_rich_1e-4", "/w", (1, 1), 2)[-1] == "--config.seed=2"
  assert not any("seed" in a for a in beyond.command("ml1m", "lowrank_rich_1e-4", "/w", (1, 1)))


def test_seeded_rows_are_listed(tmp_path):
  (tmp_path / "ml1m" / "full_rich_1e-6_seed3").mkdir(parents=True)
  text = beyond.table("ml1m", str(tmp_path))
  assert "| full_rich_1e-6_seed3 |" in text and "--config.seed=3" in text
