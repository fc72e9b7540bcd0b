"""Runs that cannot silently go wrong (issue 10): the workdir's identity and lock, verified
checkpoints with a fall-back, a finished workdir left alone, torn records, a real kill -9."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from configs import default
from ract_jax.train import checkpoint, trainer, workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(processed, **overrides):
  c = default.get_config("smoke")
  c.data.processed_dir = str(processed)
  c.baselines.names = ("popularity",)
  c.schedule.actor_epochs, c.schedule.critic_epochs, c.schedule.ac_epochs = 2, 1, 2
  c.checkpoint.every_minutes = 0.0  # A full state after every epoch: fall-backs to test.
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for part in path:
      node = node[part]
    node[last] = value
  return c


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
  return tmp_path_factory.mktemp("processed") / "synthetic"


@pytest.fixture(scope="module")
def finished(tmp_path_factory, processed):
  workdir = tmp_path_factory.mktemp("finished")
  return str(workdir), trainer.train_and_evaluate(_config(processed), str(workdir))


def _snapshot(workdir):
  out = {}
  for name in ("config.json", "results.json", "metrics.jsonl", "identity.json"):
    path = os.path.join(workdir, name)
    with open(path, "rb") as f:
      out[name] = (f.read(), os.stat(path).st_mtime_ns)
  return out


def _copy(workdir, tmp_path):
  target = str(tmp_path / "copy")
  shutil.copytree(workdir, target)
  return target


@pytest.mark.parametrize("overrides,keys", [
    ({"data.heldout_users": 30, "seed": 1, "schedule.ac_epochs": 5},
     ["config.data.heldout_users: 40 -> 30", "config.seed: 98765 -> 1",
      "config.schedule.ac_epochs: 2 -> 5", "data (content hash)"]),
    ({"actor.hidden_dim": 300}, ["config.actor.hidden_dim: 32 -> 300"]),
])
def test_a_different_run_is_refused_before_anything_is_written(finished, processed, tmp_path,
                                                               overrides, keys):
  workdir = _copy(finished[0], tmp_path)
  before = _snapshot(workdir)
  other = tmp_path / "processed30" if "data.heldout_users" in overrides else processed
  with pytest.raises(workdir_lib.WorkdirError, match="refusing to resume") as e:
    trainer.train_and_evaluate(_config(other, **overrides), workdir)
  for key in keys:
    assert key in str(e.value), str(e.value)
  assert "--config.pretrained_actor=" in str(e.value)
  assert _snapshot(workdir) == before


def test_a_finished_workdir_is_left_alone_unless_reevaluated(finished, processed, tmp_path):
  workdir, results = finished
  workdir = _copy(workdir, tmp_path)
  before = _snapshot(workdir)
  assert trainer.train_and_evaluate(_config(processed), workdir) == results
  assert _snapshot(workdir) == before
  again = trainer.train_and_evaluate(_config(processed, reevaluate=True), workdir)
  for model in ("actor", "ract", "popularity"):
    assert again[model]["test"] == results[model]["test"], model
  assert os.stat(os.path.join(workdir, "results.json")).st_mtime_ns > before["results.json"][1]


def test_a_busy_workdir_is_refused_and_a_dead_runs_lock_is_not(processed, tmp_path):
  workdir = str(tmp_path / "w")
  os.makedirs(workdir)
  holder = subprocess.Popen([sys.executable, "-c", (
      "import sys, time; sys.path.insert(0, sys.argv[1]); "
      "from ract_jax.train import workdir as w; w.Lock(sys.argv[2]).acquire(); "
      "print('locked', flush=True); time.sleep(60)"), ROOT, workdir], stdout=subprocess.PIPE,
      text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(workdir_lib.WorkdirError, match=r"in use by another run \(host .* pid "
                       rf"{holder.pid} since"):
      trainer.train_and_evaluate(_config(processed), workdir)
  finally:
    holder.kill()
    holder.wait()
  # The holder died without releasing: its lock went with it (the file stays, harmless).
  assert os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE))
  with workdir_lib.Lock(workdir):
    pass


def test_an_unwritable_workdir_names_itself(processed, tmp_path):
  not_a_folder = tmp_path / "file"
  not_a_folder.write_text("x")
  with pytest.raises(workdir_lib.WorkdirError, match="is not writable"):
    trainer.train_and_evaluate(_config(processed), str(not_a_folder / "w"))


def _kill_after(workdir, processed, epoch, monkeypatch):
  """Trains until the state of global epoch `epoch` is saved, then dies."""
  original = checkpoint.Checkpoints.save

  def save_then_die(self, e, payload):
    original(self, e, payload)
    if e == epoch:
      self.wait()
      raise KeyboardInterrupt("simulated kill")

  monkeypatch.setattr(checkpoint.Checkpoints, "save", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    trainer.train_and_evaluate(_config(processed), workdir)
  monkeypatch.setattr(checkpoint.Checkpoints, "save", original)


def _data_file(workdir, epoch):
  """The largest file of a checkpoint (the parameters' array data)."""
  folder = os.path.join(workdir, "checkpoints", "state", str(epoch))
  files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs]
  return max(files, key=os.path.getsize)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_latest_checkpoint_is_skipped_for_the_previous(finished, processed, tmp_path,
                                                                 monkeypatch, caplog, damage):
  workdir = str(tmp_path / "w")
  _kill_after(workdir, processed, 3, monkeypatch)
  path = _data_file(workdir, 3)
  with open(path, "r+b") as f:
    if damage == "flip":
      f.seek(os.path.getsize(path) // 2)
      chunk = f.read(64)
      f.seek(os.path.getsize(path) // 2)
      f.write(bytes(b ^ 0xFF for b in chunk))
    else:
      f.truncate(os.path.getsize(path) // 2)
  results = trainer.train_and_evaluate(_config(processed), workdir)
  assert "checkpoint of global epoch 4" in caplog.text and "skipped" in caplog.text
  for model in ("actor", "ract"):
    assert results[model]["test"] == finished[1][model]["test"], model


def test_no_readable_checkpoint_stops_with_a_message(processed, tmp_path, monkeypatch):
  workdir = str(tmp_path / "w")
  _kill_after(workdir, processed, 1, monkeypatch)
  for epoch in (0, 1):
    with open(_data_file(workdir, epoch), "r+b") as f:
      f.write(b"\0" * 64)
  proc = subprocess.run([sys.executable, "-m", "ract_jax.main", "--config=configs/default.py:smoke",
                         f"--config.data.processed_dir={processed}",
                         "--config.baselines.names=('popularity',)",
                         "--config.schedule.actor_epochs=2", "--config.schedule.critic_epochs=1",
                         "--config.schedule.ac_epochs=2", "--config.checkpoint.every_minutes=0",
                         f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert "no checkpoint in" in proc.stderr and "can be restored" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_a_torn_last_record_is_dropped_with_a_warning(finished, processed, tmp_path, monkeypatch,
                                                      caplog):
  workdir = str(tmp_path / "w")
  _kill_after(workdir, processed, 2, monkeypatch)
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"global_epoch": 3, "stage": "ac", "va')  # Killed mid-write.
  results = trainer.train_and_evaluate(_config(processed), workdir)
  assert "metrics.jsonl: dropped its torn last line" in caplog.text
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert [json.loads(line)["global_epoch"] for line in f] == [0, 1, 2, 3, 4]
  assert results["ract"]["test"] == finished[1]["ract"]["test"]


def test_kill_9_at_any_moment_then_resume_is_identical(finished, processed, tmp_path):
  """A real SIGKILL (no clean-up at all) of a run saving after every epoch, then a resume whose
  latest checkpoint is also damaged: the same results as the uninterrupted run."""
  workdir = str(tmp_path / "w")
  args = [sys.executable, "-m", "ract_jax.main", "--config=configs/default.py:smoke",
          f"--config.data.processed_dir={processed}", "--config.baselines.names=('popularity',)",
          "--config.schedule.actor_epochs=2", "--config.schedule.critic_epochs=1",
          "--config.schedule.ac_epochs=2", "--config.checkpoint.every_minutes=0",
          f"--workdir={workdir}"]
  proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 600
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= 3:
      break
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  state = os.path.join(workdir, "checkpoints", "state")
  steps = sorted(int(s) for s in os.listdir(state) if s.isdigit()) if os.path.isdir(state) else []
  if len(steps) > 1:  # Damage the latest too: the fall-back must still give the same run.
    with open(_data_file(workdir, steps[-1]), "r+b") as f:
      f.write(b"\0" * 64)
  results = trainer.train_and_evaluate(_config(processed), workdir)
  for model in ("actor", "ract"):
    assert results[model]["test"] == finished[1][model]["test"], model
