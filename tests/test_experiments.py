"""Tests for experiments/report.py and experiments/plots.py on a hand-made training workdir."""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str, filename: str):
  spec = importlib.util.spec_from_file_location(name, _ROOT / "experiments" / filename)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


rp = _load("ract_experiments_report", "report.py")

# ---- The fake run --------------------------------------------------------------------------------
# Nine test users; uid 108 has no held-out item and must be left out of every mean.
UIDS = np.arange(100, 109)
N_FOLDIN = np.array([200, 200, 400, 400, 600, 600, 10, 800, 5])
N_HELDOUT = np.array([49, 50, 100, 101, 150, 151, 2, 200, 0])
# activity = fold-in + held-out: 249, 250, 500, 501, 750, 751, 12, 1000, (5)
ACTOR_NDCG100 = np.array([0.40, 0.30, 0.50, 0.20, 0.60, 0.45, 0.10, 0.35, 0.99])
RACT_NDCG100 = np.array([0.45, 0.30, 0.55, 0.30, 0.55, 0.50, 0.20, 0.40, 0.00])
# Differences over the 8 users: .05 0 .05 .10 -.05 .05 .10 .05 -> mean .35/8, sum of squared
# deviations from the mean 0.0171875 (worked by hand).
DIFF_MEAN = 0.35 / 8
DIFF_SD = math.sqrt(0.0171875 / 7)

RESULTS = {
    "popularity": {"validation": {}, "test": {"recall@20": 0.1500, "recall@20_se": 0.0030,
                                              "recall@50": 0.2500, "recall@50_se": 0.0040,
                                              "ndcg@100": 0.2000, "ndcg@100_se": 0.0035,
                                              "n_users": 8, "n_skipped": 1}},
    "ease": {"lambda": 500.0, "validation": {},
             "test": {"recall@20": 0.3910, "recall@20_se": 0.0011, "recall@50": 0.5210,
                      "recall@50_se": 0.0012, "ndcg@100": 0.4200, "ndcg@100_se": 0.0013,
                      "n_users": 8, "n_skipped": 1}},
    "actor": {"validation": {}, "test": {"recall@20": 0.3960, "recall@20_se": 0.0021,
                                         "recall@50": 0.5360, "recall@50_se": 0.0022,
                                         "ndcg@100": 0.4260, "ndcg@100_se": 0.0023,
                                         "n_users": 8, "n_skipped": 1}},
    "ract": {"validation": {}, "test": {"recall@20": 0.4030, "recall@20_se": 0.0031,
                                        "recall@50": 0.5430, "recall@50_se": 0.0032,
                                        "ndcg@100": 0.4340, "ndcg@100_se": 0.0033,
                                        "n_users": 8, "n_skipped": 1},
             "diagnostics": {"test_pearson_critic_vs_ndcg@100": 1.0,
                             "test_pearson_nll_vs_ndcg@100": -1.0, "best_global_epoch": 6,
                             "best_stage": "ac"}},
}


def _per_user(ndcg100: np.ndarray, ndcg10: float, with_critic: bool) -> dict[str, np.ndarray]:
  d = {"uids": UIDS, "n_foldin": N_FOLDIN, "n_heldout": N_HELDOUT}
  for r in (10, 20, 50, 100, 200):
    d[f"ndcg@{r}"] = ndcg100.copy() if r == 100 else np.full(9, ndcg10)
  d["ndcg@10"][-1] = 0.9  # The skipped user: would move every mean if counted.
  for r in (10, 20, 50, 100):
    d[f"recall@{r}"] = ndcg100 + 0.1
  if with_critic:
    d["nll"] = -3.0 * ndcg100 + 7.0  # r(nll, ndcg@100) = -1
    d["nll"][-1] = 0.0
    d["critic"] = ndcg100.copy()  # r(critic, ndcg@100) = +1
    d["critic"][-1] = 5.0
  else:
    d["nll"] = 2.0 * ndcg100 + 1.0  # r = +1
    d["nll"][-1] = 100.0
  return d


def _metrics_rows() -> list[dict]:
  rows = []
  val = [0.30, 0.35, 0.36, 0.355, 0.36, 0.40, 0.39]  # best: global epoch 5 (ac epoch 1)
  stages = [("actor", 1, 3), ("actor", 2, 3), ("actor", 3, 3), ("critic", 1, 2), ("critic", 2, 2),
            ("ac", 1, 2), ("ac", 2, 2)]
  best = -1.0
  for e, ((stage, k, n), v) in enumerate(zip(stages, val)):
    best = max(best, v)
    row = {"global_epoch": e, "stage": stage, "epoch": k, "epochs": n, "seconds": 1.0,
           "users_per_s": 100.0, "val": {"ndcg@100": v, "recall@20": v, "n_users": 8,
                                         "n_skipped": 1}, "best_val_ndcg@100": best}
    if stage == "actor":
      row.update(nll=500.0 - e, kl=1.0, beta=0.1)
    else:
      critic_r = {3: 0.3, 4: 0.5, 5: 0.6, 6: 0.7}[e]
      row.update(mse=0.01, nll=490.0, critic_mean=0.4, critic_std=0.1, critic_r=critic_r,
                 target_mean=0.4)
      row["val"].update(critic_r=critic_r - 0.05, critic_mse=0.02)
    rows.append(row)
  return rows


def _write_workdir(path: pathlib.Path, stage1_only: bool = False) -> pathlib.Path:
  path.mkdir(parents=True, exist_ok=True)
  results = json.loads(json.dumps(RESULTS))
  rows = _metrics_rows()
  if stage1_only:
    del results["ract"]
    rows = rows[:3]
  (path / "results.json").write_text(json.dumps(results))
  (path / "config.json").write_text(json.dumps({"actor": {"kind": "multvae"}}))
  lines = [json.dumps(r) for r in rows]
  if not stage1_only:  # A stale record of the last epoch before a resume: the later one wins.
    stale = json.loads(lines[-1])
    stale["val"]["ndcg@100"] = 0.99
    lines.insert(-1, json.dumps(stale))
  (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
  np.savez(path / "per_user_test_actor.npz", **_per_user(ACTOR_NDCG100, 0.20, False))
  if not stage1_only:
    ract = _per_user(RACT_NDCG100, 0.25, True)
    order = np.array([3, 0, 8, 5, 1, 7, 2, 6, 4])  # Another user order: aligned by uid.
    np.savez(path / "per_user_test_ract.npz", **{k: v[order] for k, v in ract.items()})
  return path


@pytest.fixture
def workdir(tmp_path):
  return _write_workdir(tmp_path / "run_a")


# ---- (a) Table 1 ---------------------------------------------------------------------------------


def test_table1_rows_and_markdown(workdir):
  rows = rp.table1(rp.load_results(workdir), "run_a", rp.actor_display_name(workdir))
  assert [r["model"] for r in rows] == ["ract", "actor", "ease", "popularity"]
  assert [r["name"] for r in rows] == ["RaCT", "VAE (pre-trained actor)", "EASE (λ=500)",
                                       "Popularity"]
  ract = rows[0]
  assert ract["recall@20"] == 0.403 and ract["recall@50"] == 0.543 and ract["ndcg@100"] == 0.434
  assert ract["ndcg@100_se"] == 0.0033 and ract["n_users"] == 8
  assert rows[1]["recall@20_se"] == 0.0021
  md = rp.to_markdown(rows)
  assert "| Model | Recall@20 | Recall@50 | NDCG@100 | users |" in md
  assert "| RaCT | 0.4030 ± 0.0031 | 0.5430 ± 0.0032 | 0.4340 ± 0.0033 | 8 |" in md
  assert "| VAE (pre-trained actor) | 0.3960 ± 0.0021 |" in md
  assert "| EASE (λ=500) |" in md and "| Popularity | 0.1500 ± 0.0030 |" in md
  assert "Run" not in md  # One run: no Run column.


# ---- (b)-(e) -------------------------------------------------------------------------------------


def test_paired_difference_by_hand(workdir):
  actor, ract = rp.load_per_user(workdir, "actor"), rp.load_per_user(workdir, "ract")
  p = rp.paired_difference(actor, ract)
  assert p["n"] == 8
  assert p["mean"] == pytest.approx(DIFF_MEAN, abs=1e-12)
  assert p["sd"] == pytest.approx(DIFF_SD, abs=1e-12)
  half = 1.96 * DIFF_SD / math.sqrt(8)
  assert p["ci_low"] == pytest.approx(DIFF_MEAN - half, abs=1e-12)
  assert p["ci_high"] == pytest.approx(DIFF_MEAN + half, abs=1e-12)
  assert p["ci_low"] > 0 and p["excludes_zero"] is True
  assert p["before"] == pytest.approx(2.90 / 8) and p["after"] == pytest.approx(3.25 / 8)
  assert (p["n_better"], p["n_worse"], p["n_equal"]) == (6, 1, 1)


def test_paired_difference_ci_including_zero():
  base = {"uids": np.arange(4), "n_heldout": np.ones(4, int)}
  a = dict(base, **{"ndcg@100": np.array([0.5, 0.5, 0.5, 0.5])})
  r = dict(base, **{"ndcg@100": np.array([0.6, 0.4, 0.6, 0.4])})
  p = rp.paired_difference(a, r)
  assert p["mean"] == pytest.approx(0.0, abs=1e-12) and p["excludes_zero"] is False


def test_activity_group_index_follows_the_paper():
  a = [0, 249, 250, 251, 500, 501, 750, 751, 5000]
  assert rp.activity_group_index(a).tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3]
  assert rp.activity_group_labels() == ["<250", "250-500", "501-750", ">750"]
  assert rp.activity_group_labels((10,)) == ["<10", ">=10"]
  assert rp.activity_group_index([9, 10, 11], (10,)).tolist() == [0, 1, 1]


def test_activity_groups_by_hand(workdir):
  actor, ract = rp.load_per_user(workdir, "actor"), rp.load_per_user(workdir, "ract")
  groups = rp.activity_groups(actor, ract)
  assert [g["group"] for g in groups] == ["<250", "250-500", "501-750", ">750"]
  assert [g["n"] for g in groups] == [2, 2, 2, 2]  # uid 108 (activity 5, no held-out) left out
  want_before = [(0.40 + 0.10) / 2, (0.30 + 0.50) / 2, (0.20 + 0.60) / 2, (0.45 + 0.35) / 2]
  want_after = [(0.45 + 0.20) / 2, (0.30 + 0.55) / 2, (0.30 + 0.55) / 2, (0.50 + 0.40) / 2]
  assert [g["before"] for g in groups] == pytest.approx(want_before)
  assert [g["after"] for g in groups] == pytest.approx(want_after)
  assert [g["gain"] for g in groups] == pytest.approx(np.subtract(want_after, want_before))
  assert (groups[0]["activity_min"], groups[0]["activity_max"]) == (12, 249)
  assert (groups[3]["activity_min"], groups[3]["activity_max"]) == (751, 1000)
  # Other edges and the held-out count alone as activity.
  held = rp.activity_groups(actor, ract, edges=(100,), activity="heldout")
  assert [g["n"] for g in held] == [3, 5]  # held-out 49, 50, 2 | 100, 101, 150, 151, 200


def test_ndcg_at_r(workdir):
  rows = rp.ndcg_at_r(rp.load_per_user(workdir, "actor"), rp.load_per_user(workdir, "ract"))
  assert [r["R"] for r in rows] == [10, 20, 50, 100, 200]
  r10 = rows[0]
  assert r10["before"] == pytest.approx(0.20) and r10["after"] == pytest.approx(0.25)
  assert r10["gain"] == pytest.approx(0.05) and r10["gain_pct"] == pytest.approx(25.0)
  assert r10["before_se"] == pytest.approx(0.0, abs=1e-12)
  r100 = rows[3]
  assert r100["before"] == pytest.approx(2.90 / 8) and r100["gain"] == pytest.approx(DIFF_MEAN)


def test_correlations(workdir):
  c = rp.correlations(rp.load_results(workdir), rp.load_metrics(workdir),
                      rp.load_per_user(workdir, "actor"), rp.load_per_user(workdir, "ract"))
  assert c["test_nll_vs_ndcg@100_actor"] == pytest.approx(1.0)
  assert c["test_nll_vs_ndcg@100_ract"] == pytest.approx(-1.0)
  assert c["test_critic_vs_ndcg@100_ract"] == pytest.approx(1.0)
  assert c["reported"]["best_stage"] == "ac"
  assert c["stage2_end"]["global_epoch"] == 4 and c["stage2_end"]["train_critic_r"] == 0.5
  assert c["stage2_end"]["val_critic_r"] == pytest.approx(0.45)
  assert c["stage3_end"]["train_critic_r"] == 0.7
  assert c["stage3_end"]["val_critic_r"] == pytest.approx(0.65)
  # The stale duplicate of global epoch 6 (val 0.99) is replaced by its later record.
  assert c["best"] == {"global_epoch": 5, "stage": "ac", "epoch": 1, "val_ndcg@100": 0.40}
  assert c["selected"] == c["best"]  # results.json: best_global_epoch 6 (1-based)


def test_selected_row_on_ties():
  rows = [{"global_epoch": e, "stage": s, "epoch": 1, "val": {"ndcg@100": v}}
          for e, (s, v) in enumerate([("actor", 0.2), ("actor", 0.3), ("critic", 0.3),
                                      ("ac", 0.25)])]
  pick = lambda epoch: rp.selected_row(
      rows, {"ract": {"diagnostics": {"best_global_epoch": epoch}}})
  assert rp.best_row(rows)["global_epoch"] == 1
  assert pick(3)["global_epoch"] == 2  # The trainer's tied pick (1-based 3 -> 0-based 2).
  assert pick(4)["global_epoch"] == 1  # Not at the best score: fall back to the first best.
  assert rp.selected_row(rows, {})["global_epoch"] == 1


# ---- Command line ------------------------------------------------------------------------------


def test_cli_writes_markdown_and_json(workdir, tmp_path):
  other = _write_workdir(tmp_path / "run_b", stage1_only=True)
  out = tmp_path / "cmp" / "rep"
  proc = subprocess.run([sys.executable, "experiments/report.py", str(workdir), str(other),
                         "--out", str(out)], cwd=_ROOT, capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode == 0, proc.stderr
  md = (tmp_path / "cmp" / "rep.md").read_text()
  assert proc.stdout == md + "\n"
  assert "| Run | Model |" in md
  assert "| run_a | RaCT | 0.4030 ± 0.0031 |" in md
  assert "| run_b | VAE (pre-trained actor) | 0.3960 ± 0.0021 |" in md
  assert "run_b | RaCT" not in md
  assert "501-750" in md and "excludes 0" in md
  rep = json.loads((tmp_path / "cmp" / "rep.json").read_text())
  assert len(rep["table1"]) == 4 + 3
  run_a, run_b = rep["runs"]
  assert run_a["paired_ndcg@100"]["mean"] == pytest.approx(DIFF_MEAN)
  assert run_b["paired_ndcg@100"] is None
  assert [g["after"] for g in run_b["activity_groups"]] == [None] * 4
  assert run_b["correlations"]["stage2_end"] is None


def test_cli_default_prefix(workdir):
  proc = subprocess.run([sys.executable, "experiments/report.py", str(workdir),
                         "--activity-edges", "100,500"], cwd=_ROOT, capture_output=True,
                        text=True, timeout=60)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads((workdir / "report.json").read_text())
  assert [g["group"] for g in rep["runs"][0]["activity_groups"]] == ["<100", "100-500", ">500"]
  assert (workdir / "report.md").exists()


# ---- Plots ---------------------------------------------------------------------------------------


def test_plots_write_pngs(workdir, tmp_path):
  pytest.importorskip("matplotlib")
  plots = _load("ract_experiments_plots", "plots.py")
  out = tmp_path / "figs"
  written = plots.main([str(workdir), "--out", str(out), "--max-activity", "1000"])
  names = ["learning_curve.png", "scatter_nll_vs_ndcg.png", "scatter_critic_vs_ndcg.png",
           "ndcg_at_r.png", "ndcg_by_activity.png"]
  assert sorted(written) == sorted(names)
  for name in names:
    data = (out / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, name
  # Stage 1 only: nothing to draw for the critic (skipped, not an error).
  assert plots.plot_scatter_critic(None, str(tmp_path / "none.png")) is None
  assert not (tmp_path / "none.png").exists()


def test_learning_curve_title_names_the_dataset_and_actor_not_the_workdir(tmp_path):
  plots = _load("ract_experiments_plots", "plots.py")
  workdir = tmp_path / "my_run_2024_take3"
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps({"data": {"name": "ml1m-implicit"},
                                                   "actor": {"kind": "multvae"}}))
  title = plots.learning_curve_title(str(workdir))
  assert title.endswith(": ml1m-implicit, VAE") and "my_run" not in title


def test_msd_estimate_drops_the_compiling_epoch_and_scales_per_user(tmp_path):
  me = _load("ract_experiments_msd_estimate", "msd_estimate.py")
  rows = []
  for stage, secs in (("actor", (50.0, 2.0, 2.0)), ("critic", (40.0, 1.0)), ("ac", (30.0,))):
    for k, s in enumerate(secs):  # 1,000 training users; 100 validation users at 0.5 s.
      rows.append({"stage": stage, "epoch": k + 1, "seconds": s, "users_per_s": 1000 / s,
                   "val_seconds": 0.5, "val": {"n_users": 100}})
  (tmp_path / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n{torn")
  est = me.estimate(me.read_rows(str(tmp_path)), train_users=10_000, val_users=1_000,
                    epochs=(3, 2, 1))
  # actor: 2 s per 1,000 users -> 20 s, validation 0.5 s per 100 -> 5 s; 25 s x 3 epochs.
  assert est["actor"]["epochs_timed"] == 2 and est["actor"]["stage_s"] == pytest.approx(75.0)
  assert est["critic"]["stage_s"] == pytest.approx(2 * (10.0 + 5.0))
  assert est["ac"]["compile_included"] and est["ac"]["stage_s"] == pytest.approx(300.0 + 5.0)
  assert est["total_s"] == pytest.approx(75.0 + 30.0 + 305.0) and "missing" not in est
  assert me.estimate(rows[:3])["missing"] == ["critic", "ac"]
