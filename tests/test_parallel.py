"""1 device and 4 fake CPU devices give the same per-epoch losses and metrics (all three stages).

Each device count runs in its own process (XLA_FLAGS must be set before JAX starts). Random draws
are keyed by global user and item, so both runs see identical batches, masks and noise; what may
differ is the order of floating-point reductions across devices (psum), which Adam amplifies a
little. Tolerances: training losses 1e-4 relative, validation/test metrics 2e-3 absolute.
"""

import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(n_devices, processed, workdir):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
  env["JAX_PLATFORMS"] = "cpu"
  # Share the suite's persistent compilation cache (see conftest.py).
  import jax
  env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir or ""
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "parallel_run.py"),
                         str(processed), str(workdir)], env=env, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-4000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
  return json.loads(line[len("RESULT "):])


def test_one_device_equals_four_devices(tmp_path):
  processed = tmp_path / "processed"
  one = _run(1, processed, tmp_path / "one")
  four = _run(4, processed, tmp_path / "four")
  assert one["devices"] == 1 and four["devices"] == 4
  assert [r["stage"] for r in one["rows"]] == [r["stage"] for r in four["rows"]]
  for a, b in zip(one["rows"], four["rows"]):
    for key in ("nll", "kl", "mse"):
      if key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-4, err_msg=f"{a['stage']} {key}")
    np.testing.assert_allclose(b["val"]["ndcg@100"], a["val"]["ndcg@100"], atol=2e-3)
  np.testing.assert_allclose(four["test"]["ndcg@100"], one["test"]["ndcg@100"], atol=2e-3)
