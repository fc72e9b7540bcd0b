"""The command line: bad flags, configs and inputs end with a clear message, not a traceback, and
leave nothing half-written."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", RACT_JAX_CACHE=str(tmp_path / "cache"))
  return subprocess.run([sys.executable, "-m", "ract_jax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("override,expect", [
    ("--config.actor.lrr=1", "lrr"),  # Unknown key: ml_collections names it.
    ("--config.batch_size=abc", "batch_size"),  # Wrong type: absl's flag parsing error.
])
def test_bad_overrides_are_flag_errors(tmp_path, override, expect):
  proc = _main("--config=configs/default.py:smoke", f"--workdir={tmp_path / 'w'}", override,
               tmp_path=tmp_path)
  assert proc.returncode != 0
  assert expect in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("override,expect", [
    ("--config.data.heldout_users=1000", "heldout_users"),  # 2H >= users.
    ("--config.schedule.actor_epochs=-1", "config.schedule.actor_epochs"),
    ("--config.actor.kind=gan", "config.actor.kind"),
    # Checked before any data is prepared or any epoch runs (they used to fail after stage 1).
    ("--config.critic.k=0", "config.critic.k=0 must be an integer >= 1"),
    ("--config.eval.ndcg_ks=(10,20)", "config.eval.ndcg_ks=(10, 20) lacks 100"),
    ("--config.critic.metric=map", "config.critic.metric='map'"),
    ("--config.checkpoint.keep=1", "config.checkpoint.keep=1"),
    # The keys added with 0.3.0: each refused up front, naming itself.
    ("--config.actor.first_layer=fast", "config.actor.first_layer='fast'"),
    ("--config.actor.matmul_precision=bf16", "is not offered"),
    ("--config.critic.features=('nosuch',)", "config.critic.features=('nosuch',)"),
    ("--config.actor.init=svd", "config.actor.init='svd'"),
    ("--config.eval.empty_users=one", "config.eval.empty_users='one'"),
    ("--config.progress.epoch_chunks=-2", "config.progress.epoch_chunks=-2"),
    # Added with 0.3.1.
    ("--config.baselines.ease_float64=maybe", "--config.baselines.ease_float64=maybe"),
])
def test_impossible_configs_name_the_option(tmp_path, override, expect):
  proc = _main("--config=configs/default.py:smoke", f"--workdir={tmp_path / 'w'}", override,
               tmp_path=tmp_path)
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert "error:" in proc.stderr and expect in proc.stderr
  assert "Traceback" not in proc.stderr
  if "heldout" not in override:  # Found before anything is prepared or written.
    assert not (tmp_path / "w").exists() and not (tmp_path / "cache").exists()


def test_an_unwritable_workdir_is_one_line(tmp_path):
  (tmp_path / "file").write_text("x")
  proc = _main("--config=configs/default.py:smoke", f"--workdir={tmp_path / 'file' / 'w'}",
               tmp_path=tmp_path)
  assert proc.returncode == 1
  assert "is not writable" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_raw_file_says_where_and_where_to_download(tmp_path):
  missing = tmp_path / "nowhere" / "ratings.csv"
  proc = _main("--config=configs/ml20m.py", f"--workdir={tmp_path / 'w'}",
               f"--config.data.raw_path={missing}", tmp_path=tmp_path)
  assert proc.returncode == 1
  assert str(missing) in proc.stderr and "grouplens.org" in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("arrays.npz"))


def test_unknown_variant_is_one_line(tmp_path):
  proc = _main("--config=configs/ml1m_implicit.py:smok", f"--workdir={tmp_path / 'w'}",
               tmp_path=tmp_path)
  assert proc.returncode != 0 and "unknown variant 'smok'" in proc.stderr
  assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_orbax_info_records_are_dropped_below_verbosity_1():
  import logging as pylogging
  from ract_jax import main as main_lib
  f = main_lib.OrbaxInfoFilter()
  rec = lambda level, path: pylogging.LogRecord("absl", level, path, 1, "m", None, None)
  assert not f.filter(rec(pylogging.INFO, "/x/site-packages/orbax/checkpoint/_src/c.py"))
  assert f.filter(rec(pylogging.WARNING, "/x/site-packages/orbax/checkpoint/_src/c.py"))
  assert f.filter(rec(pylogging.INFO, "/x/ract_jax/train/trainer.py"))


def test_help_lists_the_configs_the_presets_and_where_keys_are(tmp_path):
  from ract_jax.config_base import ACTOR_PRESETS
  proc = _main("--help", tmp_path=tmp_path)
  text = " ".join((proc.stdout + proc.stderr).split())
  configs = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
                   if f.endswith(".py") and f != "__init__.py")
  missing = [c for c in configs if f" {c}" not in text] + [p for p in ACTOR_PRESETS if p not in text]
  assert not missing, missing
  assert "ract_jax/config_base.py" in text and "ract_jax.recommend" in text
