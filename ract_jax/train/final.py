"""The selected models on the test users: metrics, top-100 exports, the portable model (Algorithm 1's
last line, "evaluate the best actor on the test users").

`test_model` evaluates one selected model; `finalize` the final one with the last trained critic's
diagnostics (paper Figures 4 and 6); `save_model` writes it in portable form (`model_io`) with its
predictions in raw ids.
"""

from __future__ import annotations

import os
import shutil

import jax
import numpy as np

from ract_jax import evaluate, metrics, model_io
from ract_jax.train import checkpoint, records
from ract_jax.train.setup import Run
from ract_jax.train.state import TrainState
from ract_jax.train.validate import uses_critic


class WeakCriticError(RuntimeError):
  """Stage 2 left the critic below `config.critic.min_train_r` and `stop_if_weak` is set."""


def test_model(run: Run, actor_params, critic_state, name: str, predictions_file: str,
               results: dict, val_summary: dict) -> dict:
  """Test evaluation of a selected model: its top-100 export, its per-user values
  (`per_user_test_<name>.npz`, for Figures 4, 7 and 8) and its `results.json` entry."""
  if critic_state is None:
    per_user = run.test.run(run.score_actor, actor_params, run.actor_loss)
  else:
    per_user = run.test.run(run.score_actor, actor_params, run.actor_loss, run.critic_estimate,
                            critic_state)
  test = run.test.summarize(per_user)
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


def finalize(run: Run, state: TrainState, best, best_epoch: int, best_val: dict,
             results: dict) -> dict:
  """The best actor by validation on the test users; with stages 2-3, the last trained critic's
  estimates beside it (paper Figures 4 and 6).

  Args:
    run: the run's setup; state: the state after the last epoch (its critic is the last trained
      one); best, best_epoch, best_val: the selected actor's parameters, its global epoch (0-based)
      and validation summary; results: `results.json` so far, updated and written.

  Returns:
    The updated results.
  """
  if not run.schedule.trains_critic:  # Stage 1 only: the actor is the final model.
    checkpoint.save_actor(run.workdir, best)  # actor_best/, for a later config.pretrained_actor.
    per_user = test_model(run, best, None, "actor", "predictions_test_actor.tsv", results,
                          best_val)
    if run.records.main:
      shutil.copyfile(os.path.join(run.workdir, "predictions_test_actor.tsv"),
                      os.path.join(run.workdir, "predictions_test.tsv"))
    save_model(run, best, "actor", best_epoch, per_user, results,
               ("predictions_test_actor_raw.tsv", "predictions_test_raw.tsv"))
  elif not uses_critic(run.config):  # Table 1's L2R rows: the fine-tuned actor, no critic.
    per_user = test_model(run, best, None, "ft", "predictions_test.tsv", results, best_val)
    results["ft"]["objective"] = run.config.ac.objective
    results["ft"]["best_global_epoch"] = int(best_epoch) + 1
    save_model(run, best, "ft", best_epoch, per_user, results, ("predictions_test_raw.tsv",))
  else:
    per_user = test_model(run, best, (state.critic, state.critic_norm), "ract",
                          "predictions_test.tsv", results, best_val)
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
    save_model(run, best, "ract", best_epoch, per_user, results, ("predictions_test_raw.tsv",))
  run.records.write_json("results.json", results)
  run.records.log("test users (%d), best-by-validation models:\n%s", run.data.test.n_users,
                  records.comparison_table(results))
  run.records.closing(results)
  return results


def save_model(run: Run, params, name: str, best_epoch: int, per_user: dict, results: dict,
               raw_predictions: tuple) -> None:
  """The selected model in portable form (`<workdir>/model/`, see `model_io`) and its test top-100
  lists in raw user and item ids (`raw_predictions` files, the lines of `predictions_test*.tsv`
  mapped through `unique_uid` / `unique_sid`)."""
  if not run.records.main:
    return
  cfg, data = run.config, run.data
  if name == "actor" and cfg.pretrained_actor:
    selected = {"pretrained_actor": cfg.pretrained_actor}
  elif best_epoch < 0:  # No epoch trained it: the initial actor (config.actor.init).
    selected = {"initial_actor": cfg.actor.init}
  else:
    stage, k, n = run.schedule.locate(int(best_epoch))
    selected = {"global_epoch": int(best_epoch) + 1, "stage": stage, "epoch": k, "epochs": n}
  info = model_io.model_info(name, selected, cfg.actor, cfg.data, cfg.eval, data.n_items,
                             results[name]["test"])
  # The parameters are replicated: any local copy is the whole array (also on multi-host runs).
  host = jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), params)
  model_io.write(run.workdir, host, info, data.unique_sid)
  write_raw_predictions(run, per_user, raw_predictions)


def write_raw_predictions(run: Run, per_user: dict, files: tuple) -> None:
  """The test users' top-100 lists of `per_user` in raw user and item ids (the lines of
  `predictions_test*.tsv` mapped through `unique_uid` / `unique_sid`)."""
  if not run.records.main:
    return
  data = run.data
  uids = data.test.uids
  users = np.asarray(data.unique_uid, dtype=object)[uids] if data.unique_uid else uids
  if not data.unique_uid:
    run.records.warn(f"{data.path} has no unique_uid.txt: {files[0]} names users by their Liang "
                     "uid.")
  items = np.asarray(data.unique_sid, dtype=object)[per_user["top"]]
  for file in files:
    evaluate.write_predictions(os.path.join(run.workdir, file), users, items)


def retest_actor(run: Run, state: TrainState, results: dict) -> None:
  """`--config.reevaluate`: the pre-trained actor of a finished run (its `actor_best/`) again."""
  actor = checkpoint.load_actor(run.config.pretrained_actor or run.workdir, state.actor)
  per_user = test_model(run, actor, None, "actor", "predictions_test_actor.tsv", results,
                        results.get("actor", {}).get("validation", {}))
  write_raw_predictions(run, per_user, ("predictions_test_actor_raw.tsv",))


def check_critic(run: Run) -> None:
  """After stage 2: a WEAK CRITIC warning when the last critic epoch's training-batch Pearson r
  with the oracle (`critic_r` of its `metrics.jsonl` row) is below `config.critic.min_train_r`
  (0 disables); with `config.critic.stop_if_weak` the run stops there (WeakCriticError)."""
  cfg = run.config
  first, last = run.schedule.span("critic")
  if last == first or not cfg.critic.min_train_r or not uses_critic(cfg):
    return
  rows = [r for r in run.records.read_metrics() if r.get("global_epoch") == last - 1]
  r = float(rows[-1].get("critic_r", np.nan)) if rows else np.nan
  if r >= cfg.critic.min_train_r:
    return
  msg = (f"WEAK CRITIC: after {last - first} critic epochs ({(last - first) * run.steps_per_epoch} "
         f"steps) the critic's training-batch Pearson r with the oracle is {r:.3f} < "
         f"config.critic.min_train_r={cfg.critic.min_train_r}; stage 3 would follow a critic that "
         "hardly ranks users. Raise --config.schedule.min_critic_steps (or critic_epochs).")
  if cfg.critic.stop_if_weak:
    run.checkpoints.wait()
    raise WeakCriticError(msg + " Stopped here (config.critic.stop_if_weak=True); the stage-2 "
                          f"state is in {run.checkpoints.directory}.")
  run.records.warn(msg)
