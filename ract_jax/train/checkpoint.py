"""Checkpoints with orbax: the resumable training state, and the best actor by validation.

`<workdir>/checkpoints/state/<epoch>`: the whole `TrainState` after a global epoch (the latest two
are kept); a run resumes from the latest. `<workdir>/checkpoints/best/<epoch>`: the actor's
parameters at the best validation NDCG@100 so far (RaCT's model selection, over the actor's
pre-training and the actor-critic epochs; ties keep the earliest epoch). `<workdir>/actor_best/`:
the best actor of stage 1, which later runs can start stages 2-3 from
(`--config.pretrained_actor=<workdir>`). Every process calls save / restore (multi-host).
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

ACTOR_DIR = "actor_best"


def _abstract(like):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, like)


def _manager(directory: str, keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


class Checkpoints:
  """The run's two checkpoint series, `state/` (to resume) and `best/` (model selection).

  Args:
    directory: `<workdir>/checkpoints`.
    keep_latest: how many full states to keep.
  """

  def __init__(self, directory: str, keep_latest: int = 2):
    self.directory = os.path.abspath(directory)
    self._state = _manager(os.path.join(self.directory, "state"), keep_latest)
    self._best = _manager(os.path.join(self.directory, "best"), 1)

  def latest_epoch(self) -> int | None:
    """The global epoch of the latest full state, or None."""
    return self._state.latest_step()

  def save_state(self, epoch: int, state) -> None:
    self._state.save(epoch, args=ocp.args.StandardSave(state))
    self._state.wait_until_finished()

  def restore_state(self, epoch: int, like):
    """Restores the state of `epoch` into the structure, shapes and shardings of `like`."""
    return self._state.restore(epoch, args=ocp.args.StandardRestore(_abstract(like)))

  def best_epoch(self) -> int | None:
    return self._best.latest_step()

  def save_best(self, epoch: int, actor_params) -> None:
    """Records the actor of `epoch` as the best so far (the previous best is removed)."""
    self._best.save(epoch, args=ocp.args.StandardSave(actor_params))
    self._best.wait_until_finished()

  def restore_best(self, like):
    """The best actor's parameters, in the structure, shapes and shardings of `like`."""
    return self._best.restore(self.best_epoch(), args=ocp.args.StandardRestore(_abstract(like)))

  def discard_best_after(self, epoch: int) -> None:
    """On resume: forgets a best actor of an epoch after the restored one (it will be replayed)."""
    for step in self._best.all_steps():
      if step > epoch:
        self._best.delete(step)

  def close(self) -> None:
    self._state.close()
    self._best.close()


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
