"""End to end: the `:smoke` configs through prepare + load, `describe`, the command line, and the
package's shape (one-way layers, no JAX)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from ract_jax.data import DataError, describe, load_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


SMOKE_CONFIGS = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, "configs"))
                       if f.endswith(".py") and f not in ("__init__.py", "base.py"))


def test_every_config_is_tested():
  assert set(SMOKE_CONFIGS) >= {"ml20m", "netflix", "msd", "ml1m", "custom", "default", "ml100k",
                                "ml_latest_small", "ml1m_implicit"}


@pytest.mark.parametrize("name", SMOKE_CONFIGS)
def test_smoke_configs_end_to_end(tmp_path, name):
  cfg = importlib.import_module(f"configs.{name}").get_config("smoke")
  cfg.data.processed_dir = str(tmp_path / "p")
  if cfg.data.raw_path and not os.path.exists(cfg.data.raw_path):
    pytest.skip(f"{cfg.data.raw_path} is absent (the real samples live in ../shared/data)")
  data = load_dataset(cfg.data, log=lambda _: None)
  h = cfg.data.heldout_users
  assert data.validation.n_users == h and data.test.n_users == h
  assert data.train.n_rows >= 30 and data.n_items > 10
  assert np.count_nonzero(data.validation.held_out.row_lengths()) >= h - 1
  for csr in (data.train, data.validation.fold_in, data.validation.held_out):
    assert csr.indices.dtype == np.int32 and csr.indptr.dtype == np.int64
    assert csr.indices.max() < data.n_items
  assert len(data.unique_uid) == data.train.n_rows + 2 * h
  assert data.train.n_rows >= h  # At least as many training users as held-out users per split.
  text = describe(data)
  assert "train:" in text and "validation:" in text and "test:" in text
  assert f"{data.n_items:,} items" in text and "density" in text


def _cli(*args, cwd=REPO):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "ract_jax.data.prepare", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=120)


def test_cli_prepares_and_prints_statistics(tmp_path):
  out = tmp_path / "p"
  r = _cli("--config=configs/ml20m.py:smoke", f"--config.data.processed_dir={out}")
  assert r.returncode == 0, r.stderr
  assert f"processed directory: {out}" in r.stdout
  assert "train:" in r.stdout and "interactions" in r.stdout and "density" in r.stdout
  r2 = _cli("--config=configs/ml20m.py:smoke", f"--config.data.processed_dir={out}")
  assert r2.returncode == 0 and "using cached" in r2.stdout


def test_cli_missing_raw_file(tmp_path):
  r = _cli("--config=configs/ml20m.py", f"--config.data.raw_path={tmp_path}/nope.csv",
           f"--config.data.processed_dir={tmp_path}/p")
  assert r.returncode == 1
  assert "Traceback" not in r.stderr
  assert f"{tmp_path}/nope.csv" in r.stderr and "--config.data.raw_path" in r.stderr
  assert "grouplens.org/datasets/movielens/20m" in r.stderr
  assert not os.path.exists(tmp_path / "p")


def test_cli_too_many_heldout_users(tmp_path):
  r = _cli("--config=configs/ml1m.py:smoke", "--config.data.heldout_users=40",
           f"--config.data.processed_dir={tmp_path}/p")
  assert r.returncode == 1 and "Traceback" not in r.stderr
  assert "--config.data.heldout_users to at most" in r.stderr and "heldout_users=40" in r.stderr
  assert "training users" in r.stderr
  assert not os.path.exists(tmp_path / "p")


def test_cli_damaged_processed_dir(tmp_path):
  out = tmp_path / "p"
  args = ("--config=configs/ml20m.py:smoke", f"--config.data.processed_dir={out}")
  assert _cli(*args).returncode == 0
  (out / "arrays.npz").write_bytes(b"garbage")
  r = _cli(*args)
  assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
  assert f"{out}/arrays.npz: cannot be read" in r.stderr and "delete it" in r.stderr


def test_data_error_is_value_error():
  assert issubclass(DataError, ValueError)
