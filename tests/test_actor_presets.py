"""Every actor of the paper's Table 2 (ract_jax/config_base.py ACTOR_PRESETS) trains a stage-1 step and a
stage-3 step on a 4-fake-device mesh: finite losses, and both steps move the parameters. Stage 3
runs for the presets whose loss is not the multinomial NLL (the critic's feature then comes from
that loss; the multinomial case is covered by test_steps.py and test_parallel.py)."""

import json
import os
import subprocess
import sys

import numpy as np

from ract_jax import config_base as base

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_preset_trains_on_four_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "actor_presets_run.py")],
                        env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-4000:]
  rows = {r["preset"]: r for r in map(json.loads, proc.stdout.strip().splitlines())}
  assert set(rows) == set(base.ACTOR_PRESETS)
  for name, r in rows.items():
    assert r["devices"] == 4
    assert np.isfinite([r["loss"], r["kl"], r["critic_mse"]]).all(), r
    assert r["moved_stage1"] > 0, r
    if base.ACTOR_PRESETS[name].get("loss", "multinomial") != "multinomial":
      assert r["moved_stage3"] > 0, r
