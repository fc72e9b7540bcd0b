"""A workdir belongs to one run: an advisory lock for the life of the run, and an identity (what
defines its results) checked before a resume writes anything."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import threading
import time

import jax
import ml_collections
import numpy as np

import ract_jax

IDENTITY_FILE = "identity.json"
LOCK_FILE = ".lock"
# Keys that cannot change a run's results (paths, logging, checkpoint cadence, how the run is
# launched or re-evaluated); everything else must match on resume. A '.*' entry covers a block.
NOT_IDENTITY = ("data.raw_path", "data.processed_dir", "eval.batch_size", "distributed",
                "checkpoint.*", "reevaluate", "progress.*", "cluster.*")


class WorkdirError(ValueError):
  """The workdir cannot be used by this run (busy, another run's, unwritable); the message says
  what to do."""


def check_writable(workdir: str) -> None:
  """Creates `workdir` if needed and checks a file can be written there."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write-test-{os.getpid()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(f"--workdir={workdir} is not writable ({e.strerror}); choose a folder you "
                       "can write to.") from None


class Lock:
  """An exclusive advisory lock on `<workdir>/.lock`, held while the run lives.

  `flock` locks are released by the kernel when their process dies, however it dies, so a stale
  lock of a killed run never blocks the next one; the file keeps the holder's host, pid and start
  time for the message a second run prints.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd = None

  def acquire(self) -> "Lock":
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
      os.close(fd)
      if e.errno in (errno.EAGAIN, errno.EACCES):
        raise WorkdirError(f"{os.path.dirname(self.path)} is in use by another run ({holder}); "
                           "wait for it to finish, or use another --workdir.") from None
      raise
    os.ftruncate(fd, 0)
    os.write(fd, f"host {socket.gethostname()} pid {os.getpid()} since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    self._fd = fd
    return self

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def _counts(key: str) -> bool:
  return not any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in NOT_IDENTITY)


def identity(config: ml_collections.ConfigDict, data_hash: str) -> dict:
  """What defines a run's results: the config (less `NOT_IDENTITY`), the data's content hash and
  the package version."""
  flat = _flatten(json.loads(json.dumps(config.to_dict(), default=str)))
  return {"config": {k: v for k, v in sorted(flat.items()) if _counts(k)}, "data": data_hash,
          "version": ract_jax.__version__}


def differences(old: dict, new: dict) -> list[str]:
  """`key: old -> new` lines for every differing entry of two identities."""
  lines = [f"config.{k}: {old['config'].get(k, '(absent)')!r} -> {new['config'].get(k, '(absent)')!r}"
           for k in sorted(set(old.get("config", {})) | set(new["config"]))
           if old.get("config", {}).get(k) != new["config"].get(k)]
  if old.get("data") != new["data"]:
    lines.append(f"data (content hash): {str(old.get('data'))[:12]} -> {new['data'][:12]}")
  if old.get("version") != new["version"]:
    lines.append(f"ract_jax version: {old.get('version')} -> {new['version']}")
  return lines


def check_identity(workdir: str, ident: dict) -> bool:
  """Compares `ident` with the workdir's recorded identity.

  Returns:
    True when the workdir already holds a run with this identity, False when it holds none.

  Raises:
    WorkdirError: it holds a run with another identity (nothing has been written).
  """
  path = os.path.join(workdir, IDENTITY_FILE)
  if not os.path.exists(path):
    return False
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f"{path} is unreadable ({e}); this workdir's run cannot be identified. "
                       "Use another --workdir.") from None
  changes = differences(old, ident)
  if changes:
    raise WorkdirError(
        f"{workdir} holds a run with another configuration or data; refusing to resume it:\n  "
        + "\n  ".join(changes) + "\nUse a new --workdir (to start stages 2-3 from this run's "
        f"pre-trained actor: --config.pretrained_actor={workdir}).")
  return True


def check_not_foreign(workdir: str) -> None:
  """Refuses a workdir holding a run's files but no identity record (an older ract_jax's run)."""
  if os.path.exists(os.path.join(workdir, IDENTITY_FILE)):
    return
  leftovers = [f for f in ("results.json", "metrics.jsonl", "checkpoints")
               if os.path.exists(os.path.join(workdir, f))]
  if leftovers:
    raise WorkdirError(f"{workdir} holds files of a run without an identity record "
                       f"({', '.join(leftovers)}: made by an older ract_jax, or damaged); it "
                       "cannot be resumed safely. Use another --workdir.")


def write_identity(workdir: str, ident: dict) -> None:
  path = os.path.join(workdir, IDENTITY_FILE)
  with open(path + ".tmp", "w") as f:
    json.dump(ident, f, indent=1, sort_keys=True)
  os.replace(path + ".tmp", path)


def claim(workdir: str, ident: dict) -> bool:
  """Process 0 checks the workdir's identity (and records it on a first start); every process
  learns the answer from it, so that no process reads a record that process 0 is writing.

  Returns:
    True when the workdir already holds this run (resume), False on a first start.

  Raises:
    WorkdirError: on every process, when the workdir holds another run.
  """
  resuming, error = False, None
  if jax.process_index() == 0:
    try:
      resuming = check_identity(workdir, ident)
      if not resuming:
        write_identity(workdir, ident)
    except WorkdirError as e:
      error = str(e)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    code = int(multihost_utils.broadcast_one_to_all(np.int32(2 if error else int(resuming))))
    if code == 2 and error is None:
      error = f"process 0 refused {workdir} (its message says why)."
    resuming = code == 1
  if error:
    raise WorkdirError(error)
  return resuming


class StopRequests:
  """SIGTERM / SIGINT turned into a request to stop after the current epoch (a cluster's
  pre-emption notice): the trainer then saves the full state and exits. A second SIGINT stops at
  once. Installed for the life of a run (main thread only) and restored after it."""

  def __init__(self):
    self.signal = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.signal == "SIGINT" and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.signal = signal.Signals(signum).name

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def requested(self) -> bool:
    """Whether any process was asked to stop (agreed across processes, so all stop together)."""
    local = self.signal is not None
    if jax.process_count() == 1:
      return local
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.int32(local))))


class Interrupted(Exception):
  """The run stopped on request after saving its state; re-running the command resumes it."""


def hold(workdir: str) -> Lock | None:
  """Process 0 takes the workdir's lock (the lock is process 0's on multi-host runs); every process
  learns whether it got it and fails with the same message if not.

  Returns:
    The held lock on process 0, None elsewhere; release it when the run ends.
  """
  lock, error = None, None
  if jax.process_index() == 0:
    try:
      lock = Lock(workdir).acquire()
    except WorkdirError as e:
      error = str(e)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    ok = bool(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
    if not ok and error is None:
      error = f"process 0 could not lock {workdir} (its message says why)."
  if error:
    raise WorkdirError(error)
  return lock
