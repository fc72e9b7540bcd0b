"""A real multi-process run on one machine: two processes of two fake CPU devices each (gloo
collectives, `--config.distributed=True --config.cluster.*`) give the same test metrics as one
process with four devices; process 0 alone prepares the data, logs and holds the workdir; killing
either process ends the other with a non-zero exit and a message instead of a hang.

Both layouts run the same 4-device mesh, with the same per-device batches and the same
psum (a sum over 4 device values); only the transport differs (in-process vs gloo over TCP), so
the test metrics are expected equal (they were, to the last bit, when this test was written); they
are compared to 1e-6 absolute, a margin for a collective that sums in another order.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEARTBEAT = 10  # --config.cluster.heartbeat_seconds: how soon a dead peer is noticed.


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(n_devices):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = ROOT
  import jax  # Share the suite's persistent compilation cache (see conftest.py).
  env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir or ""
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  return env


def _start(tmp_path, name, processed, n_devices, cluster=None, epochs=(1, 1, 1)):
  args = [sys.executable, "-m", "ract_jax.main", "--config=configs/default.py:smoke",
          f"--workdir={tmp_path / 'work'}", f"--config.data.processed_dir={processed}",
          "--config.baselines.names=()", f"--config.schedule.actor_epochs={epochs[0]}",
          f"--config.schedule.critic_epochs={epochs[1]}", f"--config.schedule.ac_epochs={epochs[2]}"]
  if cluster:
    port, i = cluster
    args += ["--config.distributed=True", f"--config.cluster.coordinator_address=127.0.0.1:{port}",
             "--config.cluster.num_processes=2", f"--config.cluster.process_id={i}",
             f"--config.cluster.heartbeat_seconds={HEARTBEAT}",
             "--config.cluster.initialization_timeout=120"]
  log = open(tmp_path / f"{name}.log", "w")
  return subprocess.Popen(args, cwd=ROOT, env=_env(n_devices), stdout=log,
                          stderr=subprocess.STDOUT), tmp_path / f"{name}.log"


def _pair(tmp_path, processed, **kw):
  port = _free_port()
  return [_start(tmp_path, f"p{i}", processed, 2, (port, i), **kw) for i in (0, 1)]


def _finish(procs, timeout):
  try:
    for p, _ in procs:
      p.wait(timeout=timeout)
  finally:
    for p, _ in procs:
      if p.poll() is None:
        p.kill()


def test_two_processes_match_one_process_of_four_devices(tmp_path):
  processed = tmp_path / "processed"
  (tmp_path / "two").mkdir()
  two = _pair(tmp_path / "two", processed)
  _finish(two, timeout=600)
  logs = [log.read_text() for _, log in two]
  assert [p.returncode for p, _ in two] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
  (tmp_path / "one").mkdir()
  one = [_start(tmp_path / "one", "p", processed, 4)]
  _finish(one, timeout=600)
  assert one[0][0].returncode == 0, one[0][1].read_text()[-3000:]

  # Process 0 prepared the data, printed the run and held the workdir's lock; process 1 was silent.
  assert "data: wrote" in logs[0] and "processes 2 (this is 0) | devices 4" in logs[0]
  assert "data:" not in logs[1] and "epoch" not in logs[1]
  assert f"pid {two[0][0].pid} " in (tmp_path / "two" / "work" / ".lock").read_text()
  a = json.loads((tmp_path / "two" / "work" / "results.json").read_text())["ract"]["test"]
  b = json.loads((tmp_path / "one" / "work" / "results.json").read_text())["ract"]["test"]
  for k in ("ndcg@100", "recall@20", "recall@50"):
    np.testing.assert_allclose(a[k], b[k], atol=1e-6, err_msg=k)


@pytest.mark.parametrize("victim", [0, 1])
def test_killing_either_process_ends_both(tmp_path, victim):
  procs = _pair(tmp_path, tmp_path / "processed", epochs=(200, 0, 0))
  try:
    log0 = procs[0][1]
    deadline = time.monotonic() + 300
    while "actor  epoch   1/" not in log0.read_text():  # Training is under way.
      assert procs[0][0].poll() is None and procs[1][0].poll() is None, log0.read_text()[-3000:]
      assert time.monotonic() < deadline, "the two processes did not start training"
      time.sleep(0.5)
    procs[victim][0].send_signal(signal.SIGKILL)
    survivor, log = procs[1 - victim]
    t0 = time.monotonic()
    survivor.wait(timeout=HEARTBEAT + 60)
    took = time.monotonic() - t0
  finally:
    _finish(procs, timeout=1)
  text = log.read_text()
  assert survivor.returncode != 0
  assert ("another process of this run has probably died" in text
          or "another task died" in text), text[-3000:]
  print(f"survivor of killing process {victim} exited after {took:.1f} s")
