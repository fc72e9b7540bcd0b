"""Checkpoints with orbax: the resumable training state, verified, and the pre-trained actor.

`<workdir>/checkpoints/state/<epoch>/`: the whole `TrainState` after a global epoch, with the best
actor by validation so far (`{"state", "best_actor", "best_epoch"}`); the trainer saves one at the
end of each stage, every `config.checkpoint.every_minutes` and when asked to stop (SIGTERM /
SIGINT), asynchronously while the next epoch runs. A resumed run restores the latest and replays the
epochs after it (their user order, masks and noise are functions of the seed and the epoch, so the
replay is exact). `<workdir>/checkpoints/checksums/<epoch>.json`: the sha256 of every file of that
checkpoint, written once it is complete; a checkpoint that fails it, or will not read, is reported
and skipped for the previous one. `<workdir>/actor_best/`: the best actor of stage 1, which later runs
can start stages 2-3 from (`--config.pretrained_actor=<workdir>`). Every process calls save and
restore (multi-host); process 0 writes the checksums.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Callable

import jax
import orbax.checkpoint as ocp

ACTOR_DIR = "actor_best"


class CheckpointError(ValueError):
  """No checkpoint of the workdir can be restored; the message says which were tried and why."""


def _abstract(like):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, like)


def _file_hashes(directory: str) -> dict:
  out = {}
  for folder, _, files in os.walk(directory):
    for name in sorted(files):
      path = os.path.join(folder, name)
      h = hashlib.sha256()
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          h.update(block)
      out[os.path.relpath(path, directory)] = h.hexdigest()
  return dict(sorted(out.items()))


class Checkpoints:
  """The run's series of full states, saved asynchronously and verified on restore.

  Args:
    directory: `<workdir>/checkpoints`.
    keep: how many full states to keep (older ones are the fall-back of a damaged latest one).
    async_save: return from `save` while orbax writes in the background.
    warn: where skipped checkpoints are reported.
  """

  def __init__(self, directory: str, keep: int = 2, async_save: bool = True,
               warn: Callable[[str], None] = print):
    self.directory = os.path.abspath(directory)
    self._sums = os.path.join(self.directory, "checksums")
    options = ocp.CheckpointManagerOptions(max_to_keep=keep,
                                           enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(os.path.join(self.directory, "state"), options=options)
    self._pending = None
    self._warn = warn
    self.main = jax.process_index() == 0

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.directory, "state", str(step))

  def _sum_path(self, step: int) -> str:
    return os.path.join(self._sums, f"{step}.json")

  def latest_epoch(self) -> int | None:
    return self._manager.latest_step()

  def wait(self) -> None:
    """Blocks until the last save is on disk, then records its checksums."""
    self._manager.wait_until_finished()
    if self._pending is not None and self.main:
      os.makedirs(self._sums, exist_ok=True)
      path = self._sum_path(self._pending)
      with open(path + ".tmp", "w") as f:
        json.dump(_file_hashes(self._step_dir(self._pending)), f, indent=0)
      os.replace(path + ".tmp", path)
      kept = {str(s) for s in self._manager.all_steps()}
      for name in os.listdir(self._sums):
        if name.endswith(".json") and name[:-5] not in kept:
          os.remove(os.path.join(self._sums, name))
    self._pending = None

  def save(self, epoch: int, payload) -> None:
    """Starts saving `payload` as the state after global epoch `epoch`."""
    self.wait()
    self._manager.save(epoch, args=ocp.args.StandardSave(payload))
    self._pending = epoch

  def _verify(self, step: int) -> str | None:
    """None if the checkpoint matches its checksums, else what is wrong."""
    if not os.path.exists(self._sum_path(step)):
      return None  # Complete (orbax committed it) but killed before its checksums were written.
    with open(self._sum_path(step)) as f:
      want = json.load(f)
    have = _file_hashes(self._step_dir(step))
    bad = sorted(name for name in set(want) | set(have) if want.get(name) != have.get(name))
    return f"{len(bad)} file(s) differ from their checksums, e.g. {bad[0]}" if bad else None

  def restore_latest(self, like):
    """The newest checkpoint that verifies and reads, as `(epoch, payload)`; `(None, None)` when
    there is none. Newer ones that fail are reported, skipped and deleted (they will be redone).

    Args:
      like: a payload with the structure, shapes and shardings to restore into.

    Raises:
      CheckpointError: checkpoints exist but none can be restored.
    """
    self.wait()
    steps = sorted(self._manager.all_steps(), reverse=True)
    failures = []
    for step in steps:
      problem = self._verify(step)
      if problem is None:
        try:
          payload = self._manager.restore(step, args=ocp.args.StandardRestore(_abstract(like)))
        except Exception as e:  # pylint: disable=broad-except  (tensorstore / zstd / shape errors)
          problem = f"it does not read ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
      if problem is None:
        for bad in failures:
          self._manager.delete(bad[0])
        return step, payload
      self._warn(f"checkpoint of global epoch {step + 1} in {self._step_dir(step)} skipped: "
                 f"{problem}.")
      failures.append((step, problem))
    if failures:
      raise CheckpointError(
          f"no checkpoint in {self.directory} can be restored (tried global epochs "
          f"{', '.join(str(s + 1) for s, _ in failures)}). Delete {self.directory} to train "
          f"this workdir from the start, or use another --workdir.")
    return None, None

  def close(self) -> None:
    self.wait()
    self._manager.close()


def save_actor(workdir: str, params) -> None:
  """Saves the best pre-trained actor (end of stage 1) as `<workdir>/actor_best`; all processes
  call it."""
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(os.path.join(os.path.abspath(workdir), ACTOR_DIR), params, force=True)
  ckptr.wait_until_finished()


def load_actor(workdir: str, like):
  """Loads `<workdir>/actor_best` into the structure, shapes and shardings of `like`."""
  path = os.path.join(os.path.abspath(os.path.expanduser(workdir)), ACTOR_DIR)
  if not os.path.isdir(path):
    raise ValueError(f"config.pretrained_actor: no pre-trained actor at {path}; point it at the "
                     "workdir of a run that finished stage 1 (it writes actor_best/ there).")
  try:
    return ocp.StandardCheckpointer().restore(path, _abstract(like))
  except Exception as e:  # Shapes differ: another dataset or actor architecture.
    raise ValueError(f"config.pretrained_actor: the actor in {path} does not fit this config's "
                     f"actor and dataset ({type(e).__name__}: {e}).") from e
