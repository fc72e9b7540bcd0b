"""Checkpoints with orbax: the latest epochs (to resume) and the best by validation NDCG@100.

One manager holds the whole training state after every epoch, with its validation score as the
checkpoint metric. `best_step()` is then RaCT's model selection (notes §3, Pitfall 12): the best
epoch over actor pre-training and the actor-critic epochs (critic pre-training leaves the actor,
hence the score, unchanged). Every process calls save / restore (multi-host).
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

METRIC = "val_ndcg@100"
# Ties go to the earliest epoch, as the authors save only on strict improvement (Pitfall 12): the
# critic pre-training epochs repeat the best actor's score exactly.
_SELECTION = "selection"


class Checkpoints:
  """Thin wrapper over `ocp.CheckpointManager` (latest N + best 1 by `METRIC`)."""

  def __init__(self, directory: str, keep_latest: int = 2):
    policies = ocp.checkpoint_managers
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policies.AnyPreservationPolicy([
            policies.LatestN(n=keep_latest),
            policies.BestN(get_metric_fn=lambda m: m[_SELECTION], reverse=False, n=1),
        ]),
        # Without best_fn, best_step() silently returns the latest step (jax-notes §5).
        best_fn=lambda m: m[_SELECTION], best_mode="max",
        enable_async_checkpointing=False)
    self.manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

  def latest_step(self):
    return self.manager.latest_step()

  def best_step(self):
    return self.manager.best_step()

  def save(self, step: int, state, score: float) -> None:
    metrics = {METRIC: float(score), _SELECTION: float(score) - 1e-12 * step}
    self.manager.save(step, args=ocp.args.StandardSave(state), metrics=metrics)
    self.manager.wait_until_finished()

  def restore(self, step: int, like):
    """Restores `step` into the structure, shapes and shardings of `like`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self.manager.close()


ACTOR_DIR = "actor_best"


def save_actor(workdir: str, params) -> None:
  """Saves the best pre-trained actor (end of stage 1) as `<workdir>/actor_best`, so later runs can
  start stages 2-3 from it (`--config.pretrained_actor=<workdir>`); all processes call it."""
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(os.path.join(os.path.abspath(workdir), ACTOR_DIR), params, force=True)
  ckptr.wait_until_finished()


def load_actor(workdir: str, like):
  """Loads `<workdir>/actor_best` into the structure, shapes and shardings of `like`."""
  path = os.path.join(os.path.abspath(os.path.expanduser(workdir)), ACTOR_DIR)
  if not os.path.isdir(path):
    raise ValueError(f"config.pretrained_actor: no pre-trained actor at {path}; point it at the "
                     "workdir of a run that finished stage 1 (it writes actor_best/ there).")
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  try:
    return ocp.StandardCheckpointer().restore(path, abstract)
  except Exception as e:  # Shapes differ: another dataset or actor architecture.
    raise ValueError(f"config.pretrained_actor: the actor in {path} does not fit this config's "
                     f"actor and dataset ({type(e).__name__}: {e}).") from e
