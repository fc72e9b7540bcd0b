"""`train_and_evaluate(config, workdir)`: the three RaCT stages end to end (paper Algorithm 1).

    state = run_stage("actor", state)    stage 1: the actor by maximum likelihood (eq. 4)
    state = hand_over(state)             the best actor by validation, a new critic
    state = run_stage("critic", state)   stage 2: the critic against the oracle (eq. 6)
    state = run_stage("ac", state)       stage 3: the actor on the critic (eq. 7), the critic on eq. 6
    finalize(state)                      the best model by validation, on the test users

Epochs are numbered globally across the stages (`setup.Schedule`). The full state is checkpointed
at the end of each stage, every `config.checkpoint.every_minutes` and when the process is asked to
stop; re-running the same command on the same workdir resumes after the latest good checkpoint,
replays the epochs after it and ends with the same metrics as an uninterrupted run. A workdir is
locked while its run lives and refuses a run of another configuration or data (`workdir.py`); a
finished workdir re-run prints its results and exits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ract_jax import actors, data as data_lib, evaluate, metrics
from ract_jax.baselines import search
from ract_jax.device import parallel
from ract_jax.train import checkpoint, final, loops, records, setup, state as state_lib, steps
from ract_jax.train import warm_start
from ract_jax.train import workdir as workdir_lib
from ract_jax.train.setup import Run
from ract_jax.train.state import TrainState
from ract_jax.train.validate import check_config, selection_metric, selection_start, uses_critic

FINISHED_FILE = "finished.json"


class NonFiniteError(FloatingPointError):
  """A loss or parameter went NaN/inf; the last good checkpoint is kept."""


@dataclasses.dataclass
class Progress:
  """Where the run is: the next epoch to run, the best validation score so far (its metrics, its
  epoch and the actor's parameters then), and when the full state was last saved."""

  start: int = 0
  best_score: float = -np.inf
  best_val: dict = dataclasses.field(default_factory=dict)
  best_actor: Any = None
  best_epoch: int = -1
  last_save: float = dataclasses.field(default_factory=time.monotonic)


_copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))  # A buffer the next epoch won't donate.


# ---- State. -------------------------------------------------------------------------------------


def initial_state(run: Run) -> TrainState:
  cfg = run.config
  create = lambda: state_lib.create(run.key, cfg.actor, cfg.critic, cfg.ac, run.shape.n_items)
  return jax.jit(create, out_shardings=parallel.replicated(run.mesh))()


def _payload(state: TrainState, progress: Progress) -> dict:
  best = state.actor if progress.best_actor is None else progress.best_actor
  return {"state": state, "best_actor": best,
          "best_epoch": np.asarray(progress.best_epoch, np.int32)}


def resume(run: Run, state: TrainState) -> tuple[TrainState, Progress]:
  """The latest good checkpoint of the workdir (if any) and the model selection up to it."""
  latest, payload = run.checkpoints.restore_latest(_payload(state, Progress()))
  if latest is None:
    run.records.truncate_metrics_after(-1, selection_metric(run.config))
    return state, Progress()
  since = selection_start(run.config, run.schedule.span("ac")[0], latest)
  best_score, best_val = run.records.truncate_metrics_after(latest, selection_metric(run.config),
                                                            since)
  stage, k, n = run.schedule.locate(latest)
  run.records.log("resumed from the checkpoint of global epoch %d (%s epoch %d/%d)", latest + 1,
                  stage, k, n)
  return payload["state"], Progress(start=latest + 1, best_score=best_score, best_val=best_val,
                                    best_actor=payload["best_actor"],
                                    best_epoch=int(payload["best_epoch"]))


# ---- Stages. ------------------------------------------------------------------------------------


def epoch_program(run: Run, stage: str):
  """The jitted epoch of `stage` (compiled once per run)."""
  if stage not in run.programs:
    cfg = run.config
    if stage == "actor":
      step = steps.make_actor_step(cfg.actor, run.shape, run.steps_per_epoch)
    elif stage == "critic":
      step = steps.make_critic_step(cfg.actor, cfg.critic, run.shape)
    else:
      step = steps.make_ac_step(cfg.actor, cfg.critic, cfg.ac, run.shape, run.steps_per_epoch)
    run.programs[stage] = loops.make_epoch(stage, step, run.mesh, run.data.train.n_rows,
                                           cfg.batch_size, loops.chunks_for(cfg.progress))
  return run.programs[stage]


def validate(run: Run, state: TrainState, with_critic: bool) -> dict:
  """Per-user validation values of the current actor (and the critic's estimates)."""
  if not with_critic:
    return run.validation.run(run.score_actor, state.actor, run.actor_loss)
  return run.validation.run(run.score_actor, state.actor, run.actor_loss, run.critic_estimate,
                            (state.critic, state.critic_norm))


def _last_saved(run: Run) -> str:
  latest = run.checkpoints.latest_epoch()
  if latest is None:
    return "no checkpoint was saved before it"
  return f"the last checkpoint (global epoch {latest + 1}) is kept in {run.checkpoints.directory}"


def train_epoch(run: Run, stage: str, epoch: int, state: TrainState,
                progress: Progress) -> TrainState:
  """One global epoch: train, check, validate, record."""
  _, k, n_stage = run.schedule.locate(epoch)
  t0 = records.now()
  program, key = epoch_program(run, stage), state_lib.epoch_key(run.key, epoch)
  compile_seconds = program.compile(state, run.csr, key)  # Timed apart: the ETA excludes it.
  on_chunk = records.chunk_progress(run.records.log, f"{stage:<6} epoch {k:3d}/{n_stage}",
                                    run.data.train.n_rows, program.steps, run.config.batch_size,
                                    run.config.progress)
  new_state, sums = program(state, run.csr, key, on_chunk)
  sums = jax.tree.map(evaluate.to_host, sums)
  seconds = records.now() - t0
  bad = records.first_bad_step(sums)
  if bad is None and not bool(loops.all_finite(new_state)):
    bad = (run.steps_per_epoch - 1, "parameters")
  if bad is not None:
    run.checkpoints.wait()
    raise NonFiniteError(
        f"non-finite {bad[1]} in stage '{stage}', epoch {k}/{n_stage}, step {bad[0] + 1}/"
        f"{run.steps_per_epoch} (global epoch {epoch + 1}); {_last_saved(run)}. Lower the "
        "learning rate or check the data.")
  state = new_state
  train = records.epoch_summary(stage, sums)

  t1 = records.now()
  critic_on = stage != "actor" and uses_critic(run.config)
  per_user = validate(run, state, with_critic=critic_on)
  val = run.validation.summarize(per_user)
  row = {"global_epoch": epoch, "stage": stage, "epoch": k, "epochs": n_stage, **train,
         "seconds": seconds, "users_per_s": run.data.train.n_rows / seconds,
         "val_seconds": records.now() - t1,
         "val": {m: val[m] for m in val if not m.endswith("_se")}}
  if critic_on:
    has = per_user["n_heldout"] > 0
    pred, truth = per_user["critic"][has], per_user["ndcg@100"][has]
    row["val"]["critic_r"] = float(metrics.pearson_r(pred, truth))
    row["val"]["critic_mse"] = float(np.mean((pred - truth) ** 2))
    if train["critic_std"] < 1e-4:
      run.records.warn(f"DEAD CRITIC: its output is constant (std {train['critic_std']:.2e}) in "
                       f"{stage} epoch {k}: stage 3 cannot move the actor. Try "
                       "--config.critic.normalize=batchnorm or another --config.critic.seed.")
  run.records.epoch_time(stage, seconds - compile_seconds + row["val_seconds"])  # Wall per epoch.
  metric = selection_metric(run.config)
  if val[metric] > progress.best_score:  # Strict: ties keep the earliest epoch.
    progress.best_score, progress.best_val = val[metric], dict(val)
    progress.best_actor, progress.best_epoch = _copy(state.actor), epoch
  row[f"best_val_{metric}"] = progress.best_score
  run.records.append_metrics(row)
  later = {s: n for s, n in zip(setup.STAGES, run.schedule.lengths)
           if setup.STAGES.index(s) > setup.STAGES.index(stage)}
  run.records.log(records.epoch_line(row, *run.records.eta(stage, n_stage - k, later)))
  return state


def save(run: Run, epoch: int, state: TrainState, progress: Progress) -> None:
  """Starts writing the full state after `epoch` (asynchronously; see checkpoint.py)."""
  run.checkpoints.save(epoch, _payload(state, progress))
  progress.last_save = time.monotonic()


def run_stage(run: Run, stage: str, state: TrainState, progress: Progress,
              stop: workdir_lib.StopRequests) -> TrainState:
  """The epochs of `stage` not yet done (a resumed run skips those before `progress.start`); the
  full state is saved after its last epoch, every `config.checkpoint.every_minutes`, and before
  stopping when the process was asked to (SIGTERM / SIGINT)."""
  first, last = run.schedule.span(stage)
  every = 60.0 * run.config.checkpoint.every_minutes
  for epoch in range(max(first, progress.start), last):
    state = train_epoch(run, stage, epoch, state, progress)
    stopping = stop.requested()
    if epoch == last - 1 or stopping or time.monotonic() - progress.last_save >= every:
      save(run, epoch, state, progress)
    if stopping:
      run.checkpoints.wait()
      raise workdir_lib.Interrupted(
          f"stopped by {stop.signal or 'another process'} after global epoch {epoch + 1}; its "
          f"state is saved in {run.checkpoints.directory}. Re-run the same command to resume.")
  return state


def hand_over(run: Run, state: TrainState, progress: Progress, results: dict) -> TrainState:
  """Algorithm 1 between stages 1 and 2: the best actor by validation (or the pre-trained one) is
  tested and kept (`actor_best/`); a new critic and fresh optimiser states start stage 2."""
  cfg = run.config
  if cfg.pretrained_actor:
    best = checkpoint.load_actor(cfg.pretrained_actor, state.actor)
    source = cfg.pretrained_actor
    progress.best_val = run.validation.summarize(
        run.validation.run(run.score_actor, best, run.actor_loss))
  elif progress.best_actor is None:  # Stage 1 skipped: the warm-started actor (config.actor.init).
    best = _copy(state.actor)  # Its own buffers: the hand-over below donates `state`.
    checkpoint.save_actor(run.workdir, best)
    source = f"the initial actor (config.actor.init={cfg.actor.init!r}, no stage-1 epoch)"
    progress.best_val = run.validation.summarize(
        run.validation.run(run.score_actor, best, run.actor_loss))
  else:
    best = progress.best_actor
    checkpoint.save_actor(run.workdir, best)
    source = f"global epoch {progress.best_epoch + 1}"
  per_user = final.test_model(run, best, None, "actor", "predictions_test_actor.tsv", results,
                        progress.best_val)
  final.save_model(run, best, "actor", progress.best_epoch, per_user, results,
             ("predictions_test_actor_raw.tsv",))
  state = jax.jit(lambda s, a: state_lib.hand_over(s, a, run.key, cfg.critic, run.shape.n_items),
                  out_shardings=parallel.replicated(run.mesh), donate_argnums=0)(state, best)
  if not uses_critic(cfg):  # An L2R fine-tuning is selected among its own epochs only.
    progress.best_score, progress.best_val, progress.best_actor = -np.inf, {}, None
    run.records.log("stage 3: the best actor (%s) fine-tuned on %s, no critic", source,
                    cfg.ac.objective)
  else:
    run.records.log("stage 2: critic pre-training from the best actor (%s)", source)
  return state


def _finished(run: Run) -> dict | None:
  path = os.path.join(run.workdir, FINISHED_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _report_finished(run: Run, finished: dict) -> dict:
  results = run.records.read_json("results.json", {}) or {}
  run.records.log("%s: this run finished on %s (%d global epochs); nothing to do. Its test "
                  "results:\n%s\n(--config.reevaluate=True re-runs the test evaluation.)",
                  run.workdir, finished.get("finished_at", "?"), finished.get("global_epochs", 0),
                  records.comparison_table(results))
  return results


def _start(run: Run, config: ml_collections.ConfigDict) -> tuple[bool, dict | None]:
  """Checks the workdir's identity before anything is written; records it on a first start.

  Returns:
    (resuming, the finished record if the run already finished).
  """
  ident = workdir_lib.identity(config, data_lib.content_hash(run.data))
  resuming = workdir_lib.claim(run.workdir, ident)  # Process 0 decides, every process learns.
  return resuming, _finished(run) if resuming else None


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                        stop: workdir_lib.StopRequests) -> dict:
  workdir_lib.check_not_foreign(workdir)
  run = setup.build(config, workdir)
  resuming, finished = _start(run, config)
  if finished and not config.reevaluate:
    return _report_finished(run, finished)
  run.records.write_json("config.json", config.to_dict())
  state = initial_state(run)
  run.records.banner(run.mesh, run.data, config,
                     {"actor": actors.param_count(state.actor),
                      "critic": actors.param_count(state.critic)})
  results = run.records.read_json("results.json", {}) or {}
  results.update(search.evaluate_baselines(config.baselines, run.data.train, run.validation,
                                           run.test, run.records.log, run.records.warn, results))
  run.records.write_json("results.json", results)

  if run.checkpoints.latest_epoch() is None:  # A resumed run restores its actor below.
    state = state.replace(actor=warm_start.initial_actor(run, state.actor))
  state, progress = resume(run, state)
  state = run_stage(run, "actor", state, progress, stop)
  if run.schedule.trains_critic and progress.start <= run.schedule.span("critic")[0]:
    state = hand_over(run, state, progress, results)
  state = run_stage(run, "critic", state, progress, stop)
  final.check_critic(run)
  state = run_stage(run, "ac", state, progress, stop)
  if finished and run.schedule.trains_critic:
    final.retest_actor(run, state, results)
  results = final.finalize(run, state, progress.best_actor, progress.best_epoch,
                           progress.best_val, results)
  run.checkpoints.close()
  run.records.write_json(FINISHED_FILE, {"global_epochs": run.schedule.total,
                                         "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")})
  return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs, resumes or (when finished) reports the configured stages; returns `results.json`.

  Raises:
    ValueError (its subclasses `workdir.WorkdirError`, `checkpoint.CheckpointError`) for a config,
      workdir or checkpoint that cannot be used, `NonFiniteError`, and `workdir.Interrupted` after
      a requested stop (state saved).
  """
  check_config(config)
  if jax.process_index() == 0:
    workdir_lib.check_writable(workdir)
  lock = workdir_lib.hold(workdir)
  try:
    with workdir_lib.StopRequests() as stop:
      return _train_and_evaluate(config, workdir, stop)
  finally:
    if lock is not None:
      lock.release()
