"""What a run sets up once and does not change: data on device, the mesh, evaluators, schedule."""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Callable

import jax
import ml_collections

from ract_jax import actors, evaluate
from ract_jax import critic as critic_lib
from ract_jax import data as data_lib
from ract_jax.data.csr import ProcessedData
from ract_jax.device import batches, parallel
from ract_jax.train import checkpoint, records, summaries
from ract_jax.train.steps import BatchShape

STAGES = ("actor", "critic", "ac")


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The global epoch numbering: [0, A) stage 1, [A, A+C) stage 2, [A+C, A+C+T) stage 3.

  A is 0 when a pre-trained actor is given (`config.pretrained_actor`).
  """

  lengths: tuple[int, int, int]

  @classmethod
  def from_config(cls, schedule_cfg: ml_collections.ConfigDict, pretrained: bool,
                  steps_per_epoch: int = 1) -> "Schedule":
    """Stage 2 gets at least `schedule_cfg.min_critic_steps` steps when it runs at all
    (`critic_epochs` raised to ceil(min_critic_steps / steps_per_epoch))."""
    a = 0 if pretrained else schedule_cfg.actor_epochs
    return cls((a, critic_epochs(schedule_cfg, steps_per_epoch), schedule_cfg.ac_epochs))

  @property
  def total(self) -> int:
    return sum(self.lengths)

  def span(self, stage: str) -> tuple[int, int]:
    """[first, last) global epochs of `stage`."""
    i = STAGES.index(stage)
    first = sum(self.lengths[:i])
    return first, first + self.lengths[i]

  def locate(self, epoch: int) -> tuple[str, int, int]:
    """(stage, 1-based epoch within the stage, epochs in the stage) of a global epoch."""
    for stage, n in zip(STAGES, self.lengths):
      first, last = self.span(stage)
      if first <= epoch < last:
        return stage, epoch - first + 1, n
    raise ValueError(f"global epoch {epoch} is outside the schedule {self.lengths}.")

  @property
  def trains_critic(self) -> bool:
    return self.lengths[1] + self.lengths[2] > 0


def critic_epochs(schedule_cfg: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
  """Stage 2's epochs: `critic_epochs`, raised to cover `min_critic_steps` steps (0 stays 0)."""
  n = schedule_cfg.critic_epochs
  if n == 0:
    return 0
  return max(n, -(-schedule_cfg.min_critic_steps // max(steps_per_epoch, 1)))


@dataclasses.dataclass
class Run:
  """The pieces of one training run that do not change from epoch to epoch."""

  config: ml_collections.ConfigDict
  workdir: str
  records: records.Records
  mesh: jax.sharding.Mesh
  data: ProcessedData
  csr: batches.DeviceCSR
  shape: BatchShape
  steps_per_epoch: int
  schedule: Schedule
  validation: evaluate.Evaluator
  test: evaluate.Evaluator
  checkpoints: checkpoint.Checkpoints
  key: jax.Array
  score_actor: Callable
  actor_loss: Callable
  critic_estimate: Callable
  programs: dict = dataclasses.field(default_factory=dict)


def load_data(data_cfg: ml_collections.ConfigDict, log) -> ProcessedData:
  """Prepares (process 0 only, atomically) and loads the dataset on every process."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    if jax.process_index() == 0:
      data_lib.prepare_dataset(data_cfg, log=log)
    multihost_utils.sync_global_devices("ract_jax: processed data ready")
  return data_lib.load_dataset(data_cfg, log=log)


def _critic_estimate(critic_cfg):
  def estimate(critic_state, inputs):
    params, norm = critic_state
    return critic_lib.predict(params, norm, inputs, critic_cfg, train=False)[0]

  return estimate


def build(config: ml_collections.ConfigDict, workdir: str) -> Run:
  """Loads the data, places it on the mesh, and builds the evaluators of a run."""
  rec = records.Records(workdir)
  if rec.main:
    rec.summaries = summaries.open_summaries(config.progress, workdir)
  mesh = parallel.make_mesh()
  data = load_data(config.data, rec.log)
  local = parallel.local_batch_size(config.batch_size, mesh)
  density = data.train.nnz / max(1, data.train.n_rows * data.n_items)
  first_layer = actors.first_layer_form(config.actor, density)
  rec.log("actor's first layer: %s (config.actor.first_layer=%s, data density %.3g%%)",
          first_layer, config.actor.first_layer, 100 * density)
  # Capacity in whole chunks of the sparse first layer, so it never pads a batch's entries.
  shape = BatchShape(n_items=data.n_items, batch_size=config.batch_size,
                     cap=batches.entry_capacity(data.train, local,
                                                multiple=actors.sparse_layer.DEFAULT_CHUNK),
                     first_layer=first_layer)
  ev = config.eval
  eval_batch = evaluate.batch_size_for([data.validation, data.test], ev.batch_size)
  caps = evaluate.shared_caps([data.validation, data.test], eval_batch, mesh.devices.size)
  evaluator = functools.partial(evaluate.Evaluator, mesh=mesh, batch_size=eval_batch,
                                ndcg_ks=tuple(ev.ndcg_ks), recall_ks=tuple(ev.recall_ks), caps=caps,
                                empty_users=ev.empty_users)
  steps_per_epoch = -(-data.train.n_rows // config.batch_size)
  schedule = Schedule.from_config(config.schedule, bool(config.pretrained_actor), steps_per_epoch)
  if schedule.lengths[1] != config.schedule.critic_epochs:
    rec.log("stage 2: %d critic epochs instead of %d, so that the critic trains for at least "
            "config.schedule.min_critic_steps=%d steps (%d per epoch)", schedule.lengths[1],
            config.schedule.critic_epochs, config.schedule.min_critic_steps, steps_per_epoch)
  return Run(
      config=config, workdir=workdir, records=rec, mesh=mesh, data=data,
      csr=batches.to_device_csr(data.train, parallel.replicated(mesh)), shape=shape,
      steps_per_epoch=steps_per_epoch, schedule=schedule,
      validation=evaluator(data.validation), test=evaluator(data.test),
      checkpoints=checkpoint.Checkpoints(os.path.join(workdir, "checkpoints"),
                                         keep=config.checkpoint.keep,
                                         async_save=config.checkpoint.async_save, warn=rec.warn),
      key=jax.random.PRNGKey(config.seed),
      score_actor=evaluate.actor_score_fn(config.actor, first_layer),
      actor_loss=functools.partial(actors.per_user_loss, config.actor),
      critic_estimate=_critic_estimate(config.critic))
