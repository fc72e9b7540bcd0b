"""`train_and_evaluate(config, workdir)`: the three RaCT stages end to end (paper Algorithm 1).

    state = run_stage("actor", state)    stage 1: the actor by maximum likelihood (eq. 4)
    state = hand_over(state)             the best actor by validation, a new critic
    state = run_stage("critic", state)   stage 2: the critic against the oracle (eq. 6)
    state = run_stage("ac", state)       stage 3: the actor on the critic (eq. 7), the critic on eq. 6
    finalize(state)                      the best model by validation, on the test users

Epochs are numbered globally across the stages (`setup.Schedule`). After every epoch the state is
checkpointed; re-running the same command on the same workdir resumes after the latest checkpoint,
skipping the finished stages, and ends with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import jax
import ml_collections
import numpy as np

from ract_jax import actors, evaluate, metrics, model_io
from ract_jax.baselines import search
from ract_jax.device import parallel
from ract_jax.train import checkpoint, loops, records, setup, state as state_lib, steps
from ract_jax.train.setup import Run
from ract_jax.train.state import TrainState

VALIDATION_METRIC = "ndcg@100"


class NonFiniteError(FloatingPointError):
  """A loss or parameter went NaN/inf; the last good checkpoint is kept."""


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError, naming the option, for a config that cannot run."""
  s = config.schedule
  for name in ("actor_epochs", "critic_epochs", "ac_epochs"):
    if getattr(s, name) < 0:
      raise ValueError(f"config.schedule.{name}={getattr(s, name)} must be >= 0.")
  if s.actor_epochs == 0 and not config.pretrained_actor and (s.critic_epochs or s.ac_epochs):
    raise ValueError("config.schedule.actor_epochs=0 with critic/ac epochs: RaCT needs a "
                     "pre-trained actor (paper §3, 'Actor Pre-training'); set actor_epochs >= 1 "
                     "or --config.pretrained_actor=<workdir of a finished stage 1>.")
  if config.batch_size <= 0:
    raise ValueError(f"config.batch_size={config.batch_size} must be positive.")
  if config.critic.kind not in ("features", "naive"):
    raise ValueError(f"config.critic.kind={config.critic.kind!r}: expected 'features' or 'naive'.")
  if not 0.0 < config.actor.keep_prob <= 1.0:
    raise ValueError(f"config.actor.keep_prob={config.actor.keep_prob} must be in (0, 1].")
  search.check_names(config.baselines)


@dataclasses.dataclass
class Progress:
  """Model selection so far: the next epoch to run and the best validation NDCG@100 (its metrics,
  its epoch). A resumed run rebuilds it from `metrics.jsonl`."""

  start: int = 0
  best_score: float = -np.inf
  best_val: dict = dataclasses.field(default_factory=dict)


# ---- State. -------------------------------------------------------------------------------------


def initial_state(run: Run) -> TrainState:
  cfg = run.config
  create = lambda: state_lib.create(run.key, cfg.actor, cfg.critic, cfg.ac, run.shape.n_items)
  return jax.jit(create, out_shardings=parallel.replicated(run.mesh))()


def resume(run: Run, state: TrainState) -> tuple[TrainState, Progress]:
  """The latest checkpoint of the workdir (if any) and the model selection up to it."""
  latest = run.checkpoints.latest_epoch()
  if latest is None:
    return state, Progress()
  state = run.checkpoints.restore_state(latest, state)
  run.checkpoints.discard_best_after(latest)
  best_score, best_val = run.records.truncate_metrics_after(latest)
  stage, k, n = run.schedule.locate(latest)
  run.records.log("resumed from the checkpoint of global epoch %d (%s epoch %d/%d)", latest + 1,
                  stage, k, n)
  return state, Progress(start=latest + 1, best_score=best_score, best_val=best_val)


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
                                           cfg.batch_size)
  return run.programs[stage]


def validate(run: Run, state: TrainState, with_critic: bool) -> dict:
  """Per-user validation values of the current actor (and the critic's estimates)."""
  if not with_critic:
    return run.validation.run(run.score_actor, state.actor, run.actor_loss)
  return run.validation.run(run.score_actor, state.actor, run.actor_loss, run.critic_estimate,
                            (state.critic, state.critic_norm))


def train_epoch(run: Run, stage: str, epoch: int, state: TrainState,
                progress: Progress) -> TrainState:
  """One global epoch: train, check, validate, record, checkpoint."""
  _, k, n_stage = run.schedule.locate(epoch)
  t0 = records.now()
  new_state, sums = epoch_program(run, stage)(state, run.csr, state_lib.epoch_key(run.key, epoch))
  sums = jax.tree.map(evaluate.to_host, sums)
  seconds = records.now() - t0
  run.records.epoch_time(stage, seconds)
  bad = records.first_bad_step(sums)
  if bad is None and not bool(loops.all_finite(new_state)):
    bad = (run.steps_per_epoch - 1, "parameters")
  if bad is not None:
    raise NonFiniteError(
        f"non-finite {bad[1]} in stage '{stage}', epoch {k}/{n_stage}, step {bad[0] + 1}/"
        f"{run.steps_per_epoch} (global epoch {epoch + 1}); the last good checkpoint (global "
        f"epoch {epoch}) is kept in {run.checkpoints.directory}. Lower the learning rate or "
        f"check the data.")
  state = new_state
  train = records.epoch_summary(stage, sums)

  per_user = validate(run, state, with_critic=stage != "actor")
  val = evaluate.summarize(per_user)
  row = {"global_epoch": epoch, "stage": stage, "epoch": k, "epochs": n_stage, **train,
         "seconds": seconds, "users_per_s": run.data.train.n_rows / seconds,
         "val": {m: val[m] for m in val if not m.endswith("_se")}}
  if stage != "actor":
    has = per_user["n_heldout"] > 0
    pred, truth = per_user["critic"][has], per_user["ndcg@100"][has]
    row["val"]["critic_r"] = float(metrics.pearson_r(pred, truth))
    row["val"]["critic_mse"] = float(np.mean((pred - truth) ** 2))
    if train["critic_std"] < 1e-4:
      run.records.warn(f"DEAD CRITIC: its output is constant (std {train['critic_std']:.2e}) in "
                       f"{stage} epoch {k}: stage 3 cannot move the actor. Try "
                       "--config.critic.normalize=batchnorm or another --config.critic.seed.")
  score = val[VALIDATION_METRIC]
  if score > progress.best_score:  # Strict: ties keep the earliest epoch.
    progress.best_score, progress.best_val = score, dict(val)
    run.checkpoints.save_best(epoch, state.actor)
  row["best_val_ndcg@100"] = progress.best_score
  run.records.append_metrics(row)
  later = {s: n for s, n in zip(setup.STAGES, run.schedule.lengths)
           if setup.STAGES.index(s) > setup.STAGES.index(stage)}
  run.records.log(records.epoch_line(row, *run.records.eta(stage, n_stage - k, later)))
  run.checkpoints.save_state(epoch, state)
  return state


def run_stage(run: Run, stage: str, state: TrainState, progress: Progress) -> TrainState:
  """The epochs of `stage` not yet done (a resumed run skips those before `progress.start`)."""
  first, last = run.schedule.span(stage)
  for epoch in range(max(first, progress.start), last):
    state = train_epoch(run, stage, epoch, state, progress)
  return state


def hand_over(run: Run, state: TrainState, progress: Progress, results: dict) -> TrainState:
  """Algorithm 1 between stages 1 and 2: the best actor by validation (or the pre-trained one) is
  tested and kept (`actor_best/`); a new critic and fresh optimiser states start stage 2."""
  cfg = run.config
  if cfg.pretrained_actor:
    best = checkpoint.load_actor(cfg.pretrained_actor, state.actor)
    source = cfg.pretrained_actor
    progress.best_val = evaluate.summarize(
        run.validation.run(run.score_actor, best, run.actor_loss))
  else:
    best = run.checkpoints.restore_best(state.actor)
    checkpoint.save_actor(run.workdir, best)
    source = f"global epoch {run.checkpoints.best_epoch() + 1}"
  per_user = test_model(run, best, None, "actor", "predictions_test_actor.tsv", results,
                        progress.best_val)
  save_model(run, best, "actor", per_user, results, ("predictions_test_actor_raw.tsv",))
  state = jax.jit(lambda s, a: state_lib.hand_over(s, a, run.key, cfg.critic, run.shape.n_items),
                  out_shardings=parallel.replicated(run.mesh))(state, best)
  run.records.log("stage 2: critic pre-training from the best actor (%s)", source)
  return state


# ---- Test evaluation. ---------------------------------------------------------------------------


def test_model(run: Run, actor_params, critic_state, name: str, predictions_file: str,
               results: dict, val_summary: dict) -> dict:
  """Test evaluation of a selected model: its top-100 export, its per-user values
  (`per_user_test_<name>.npz`, for Figures 4, 7 and 8) and its `results.json` entry."""
  if critic_state is None:
    per_user = run.test.run(run.score_actor, actor_params, run.actor_loss)
  else:
    per_user = run.test.run(run.score_actor, actor_params, run.actor_loss, run.critic_estimate,
                            critic_state)
  test = evaluate.summarize(per_user)
  if run.records.main:
    evaluate.write_predictions(os.path.join(run.workdir, predictions_file),
                               run.data.test.uids, per_user["top"])
    np.savez(os.path.join(run.workdir, f"per_user_test_{name}.npz"), uids=run.data.test.uids,
             **{k: v for k, v in per_user.items() if k != "top"})
  results[name] = {"validation": val_summary, "test": test}
  run.records.write_json("results.json", results)
  run.records.log("test  %-8s ndcg@100 %.4f (±%.4f)  recall@20 %.4f  recall@50 %.4f  [%d users]",
                  name, test["ndcg@100"], test["ndcg@100_se"], test["recall@20"],
                  test["recall@50"], test["n_users"])
  return per_user


def finalize(run: Run, state: TrainState, progress: Progress, results: dict) -> dict:
  """The best actor by validation on the test users; with stages 2-3, the last trained critic's
  estimates beside it (paper Figures 4 and 6)."""
  best_epoch = run.checkpoints.best_epoch()
  best = run.checkpoints.restore_best(state.actor)
  if not run.schedule.trains_critic:  # Stage 1 only: the actor is the final model.
    per_user = test_model(run, best, None, "actor", "predictions_test_actor.tsv", results,
                          progress.best_val)
    if run.records.main:
      shutil.copyfile(os.path.join(run.workdir, "predictions_test_actor.tsv"),
                      os.path.join(run.workdir, "predictions_test.tsv"))
    save_model(run, best, "actor", per_user, results,
               ("predictions_test_actor_raw.tsv", "predictions_test_raw.tsv"))
  else:
    per_user = test_model(run, best, (state.critic, state.critic_norm), "ract",
                          "predictions_test.tsv", results, progress.best_val)
    has = per_user["n_heldout"] > 0
    results["ract"]["diagnostics"] = {
        "test_pearson_critic_vs_ndcg@100": float(metrics.pearson_r(per_user["critic"][has],
                                                                   per_user["ndcg@100"][has])),
        "test_pearson_nll_vs_ndcg@100": float(metrics.pearson_r(per_user["nll"][has],
                                                                per_user["ndcg@100"][has])),
        "critic": f"the last trained critic (global epoch {run.schedule.total})",
        "best_global_epoch": int(best_epoch) + 1,
        "best_stage": run.schedule.locate(int(best_epoch))[0],
    }
    save_model(run, best, "ract", per_user, results, ("predictions_test_raw.tsv",))
  run.records.write_json("results.json", results)
  run.records.log("test users (%d), best-by-validation models:\n%s", run.data.test.n_users,
                  records.comparison_table(results))
  run.records.closing(results)
  return results


def save_model(run: Run, params, name: str, per_user: dict, results: dict,
               raw_predictions: tuple) -> None:
  """The selected model in portable form (`<workdir>/model/`, see `model_io`) and its test top-100
  lists in raw user and item ids (`raw_predictions` files, the lines of `predictions_test*.tsv`
  mapped through `unique_uid` / `unique_sid`)."""
  if not run.records.main:
    return
  cfg, data = run.config, run.data
  if name == "actor" and cfg.pretrained_actor:
    selected = {"pretrained_actor": cfg.pretrained_actor}
  else:
    epoch = int(run.checkpoints.best_epoch())
    stage, k, n = run.schedule.locate(epoch)
    selected = {"global_epoch": epoch + 1, "stage": stage, "epoch": k, "epochs": n}
  info = model_io.model_info(name, selected, cfg.actor, cfg.data, cfg.eval, data.n_items,
                             results[name]["test"])
  model_io.write(run.workdir, jax.device_get(params), info, data.unique_sid)
  uids = data.test.uids
  users = np.asarray(data.unique_uid, dtype=object)[uids] if data.unique_uid else uids
  if not data.unique_uid:
    run.records.warn(f"{data.path} has no unique_uid.txt: {raw_predictions[0]} names users by "
                     "their Liang uid.")
  items = np.asarray(data.unique_sid, dtype=object)[per_user["top"]]
  for file in raw_predictions:
    evaluate.write_predictions(os.path.join(run.workdir, file), users, items)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs (or resumes) the configured stages and returns the `results.json` content."""
  check_config(config)
  run = setup.build(config, workdir)
  state = initial_state(run)
  run.records.banner(run.mesh, run.data, config,
                     {"actor": actors.param_count(state.actor),
                      "critic": actors.param_count(state.critic)})
  run.records.write_json("config.json", config.to_dict())
  results = run.records.read_json("results.json", {}) or {}
  results.update(search.evaluate_baselines(config.baselines, run.data.train, run.validation,
                                           run.test, run.records.log, run.records.warn, results))
  run.records.write_json("results.json", results)

  state, progress = resume(run, state)
  state = run_stage(run, "actor", state, progress)
  if run.schedule.trains_critic and progress.start <= run.schedule.span("critic")[0]:
    state = hand_over(run, state, progress, results)
  state = run_stage(run, "critic", state, progress)
  state = run_stage(run, "ac", state, progress)
  results = finalize(run, state, progress, results)
  run.checkpoints.close()
  return results
