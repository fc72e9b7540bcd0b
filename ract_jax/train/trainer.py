"""`train_and_evaluate(config, workdir)`: the three RaCT stages end to end, resumable.

Reads top to bottom: set-up (mesh, data, evaluators, baselines), state creation, the epoch loop over
the global schedule [actor pre-training | critic pre-training | alternating actor-critic], and the
final test evaluation of the best-by-validation model (paper Algorithm 1; notes §3, Pitfall 12).

Global epoch e in [0, A) is stage 1 (actor MLE), [A, A+C) stage 2 (critic MSE, actor frozen),
[A+C, A+C+T) stage 3 (alternating). After every epoch the state is checkpointed with its validation
NDCG@100; re-running the same command on the same workdir resumes from the latest checkpoint and
ends with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import functools
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ract_jax import actors, baseline_eval, sparse_layer
from ract_jax import critic as critic_lib
from ract_jax import data as data_lib
from ract_jax import evaluate
from ract_jax.data import batches
from ract_jax.train import checkpoint, loops, parallel, records, steps

_INIT_ACTOR, _INIT_CRITIC, _EPOCHS = 1, 2, 3  # fold_in tags of the run's key streams.
VALIDATION_METRIC = "ndcg@100"


class NonFiniteError(FloatingPointError):
  """A loss or parameter went NaN/inf; the last good checkpoint is kept."""


def stage_lengths(config) -> tuple[int, int, int]:
  """(A, C, T): epochs of stages 1-3 to run. A is 0 when a pre-trained actor is given."""
  s = config.schedule
  a = 0 if config.pretrained_actor else s.actor_epochs
  return a, s.critic_epochs, s.ac_epochs


def stage_of(e: int, lengths) -> tuple[str, int, int]:
  """(stage name, 1-based epoch within the stage, epochs in the stage) of global epoch e."""
  a, c, t = lengths
  if e < a:
    return "actor", e + 1, a
  if e < a + c:
    return "critic", e - a + 1, c
  return "ac", e - a - c + 1, t


def _check_config(config: ml_collections.ConfigDict) -> None:
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


class Run:
  """The pieces of one training run that do not change from epoch to epoch."""

  def __init__(self, config, workdir):
    _check_config(config)
    self.config, self.workdir = config, workdir
    self.rec = records.Records(workdir)
    self.mesh = parallel.make_mesh()
    if jax.process_count() > 1:  # One process prepares (atomically); the others then load it.
      from jax.experimental import multihost_utils
      if jax.process_index() == 0:
        data_lib.prepare_dataset(config.data, log=self.rec.log)
      multihost_utils.sync_global_devices("ract_jax: processed data ready")
    self.data = data_lib.load_dataset(config.data, log=self.rec.log)
    self.n_items = self.data.n_items
    n_train = self.data.train.n_rows
    self.steps_per_epoch = -(-n_train // config.batch_size)
    local = parallel.local_batch_size(config.batch_size, self.mesh)
    self.cap = batches.entry_capacity(self.data.train, local, multiple=self.chunk)
    self.csr = batches.DeviceCSR(*parallel.put_replicated(
        (np.asarray(self.data.train.indptr, np.int32),
         np.asarray(self.data.train.indices, np.int32)), self.mesh))
    ev = config.eval
    caps = evaluate.shared_caps([self.data.validation, self.data.test], ev.batch_size,
                                self.mesh.devices.size)
    mk = lambda split: evaluate.Evaluator(split, self.mesh, ev.batch_size, tuple(ev.ndcg_ks),
                                          tuple(ev.recall_ks), caps)
    self.val, self.test = mk(self.data.validation), mk(self.data.test)
    self.score_actor = evaluate.actor_score_fn(config.actor)
    self.actor_loss = functools.partial(actors.per_user_loss, config.actor)
    self.key = jax.random.PRNGKey(config.seed)
    self.tx_actor = optax.adam(config.actor.learning_rate)
    self.tx_critic = optax.adam(config.critic.learning_rate)
    self.tx_ac = optax.adam(config.ac.actor_learning_rate)
    self.n_features = critic_lib.n_features(config.critic)
    self.ckpt = checkpoint.Checkpoints(os.path.join(workdir, "checkpoints"))
    self._epoch_fns = {}

  chunk = sparse_layer.DEFAULT_CHUNK

  # ---- State. ---------------------------------------------------------------------------------
  def fresh_actor(self):
    cfg = self.config

    def init():
      params = actors.init(jax.random.fold_in(self.key, _INIT_ACTOR), cfg.actor, self.n_items)
      return steps.ActorState(params, self.tx_actor.init(params), jnp.zeros((), jnp.int32))

    return jax.jit(init, out_shardings=parallel.replicated(self.mesh))()

  def fresh_critic(self, actor_params):
    """A new critic and fresh optimiser states for stages 2-3 (the authors' second train() call
    restores only the actor: notes §3, Pitfall 9)."""
    cfg = self.config

    def init(actor_params):
      ckey = jax.random.fold_in(jax.random.fold_in(self.key, _INIT_CRITIC), cfg.critic.seed)
      if cfg.critic.kind == "naive":
        cparams, norm_state = critic_lib.naive_init(ckey, self.n_items, cfg.critic.naive_hidden), {}
      elif cfg.critic.kind == "features":
        cparams, norm_state = critic_lib.init(ckey, cfg.critic, self.n_features)
      else:
        raise ValueError(f"config.critic.kind={cfg.critic.kind!r}: expected 'features' or 'naive'.")
      return (steps.CriticState(cparams, norm_state, self.tx_critic.init(cparams)),
              self.tx_ac.init(actor_params))

    return jax.jit(init, out_shardings=parallel.replicated(self.mesh))(actor_params)

  def initial_state(self) -> dict:
    actor = self.fresh_actor()
    critic, ac_opt = self.fresh_critic(actor.params)
    return {"actor": actor, "critic": critic, "ac_opt": ac_opt}

  # ---- Epoch functions (compiled once each). ---------------------------------------------------
  def epoch_fn(self, stage: str):
    if stage not in self._epoch_fns:
      cfg, m, cap, chunk = self.config, self.n_items, self.cap, self.chunk
      if stage == "actor":
        step = steps.make_actor_step(cfg, m, cap, self.steps_per_epoch, self.tx_actor, chunk)
      elif stage == "critic":
        step = steps.make_critic_step(cfg, m, cap, self.tx_critic, chunk)
      else:
        step = steps.make_ac_step(cfg, m, cap, self.steps_per_epoch, self.tx_ac, self.tx_critic,
                                  chunk)
      self._epoch_fns[stage] = loops.make_epoch(stage, step, self.mesh, self.data.train.n_rows,
                                                cfg.batch_size)
    return self._epoch_fns[stage]

  def epoch_key(self, e: int):
    return jax.random.fold_in(jax.random.fold_in(self.key, _EPOCHS), e)


def _stage_carry(stage, state):
  if stage == "actor":
    return state["actor"]
  if stage == "critic":
    return (state["actor"].params, state["critic"])
  a = state["actor"]
  return (steps.ActorState(a.params, state["ac_opt"], a.step), state["critic"])


def _merge_carry(stage, state, carry) -> dict:
  state = dict(state)
  if stage == "actor":
    state["actor"] = carry
  elif stage == "critic":  # The actor is frozen; its (donated) params come back unchanged.
    state["actor"] = state["actor"]._replace(params=carry[0])
    state["critic"] = carry[1]
  else:
    a, state["critic"] = carry
    state["actor"] = steps.ActorState(a.params, state["actor"].opt_state, a.step)
    state["ac_opt"] = a.opt_state
  return state


def _train_summary(stage: str, sums: dict) -> dict:
  """Per-epoch training metrics from the per-step sums."""
  tot = {k: float(np.sum(v)) for k, v in sums.items()}
  n = max(tot["users"], 1.0)
  if stage == "actor":
    return {"nll": tot["nll"] / n, "kl": tot["kl"] / n, "beta": float(np.asarray(sums["beta"])[-1])}
  mean_p, mean_t = tot["pred"] / n, tot["target"] / n
  var_p = max(tot["pred_sq"] / n - mean_p**2, 0.0)
  var_t = max(tot["target_sq"] / n - mean_t**2, 0.0)
  cov = tot["pred_target"] / n - mean_p * mean_t
  r = cov / np.sqrt(var_p * var_t) if var_p > 0 and var_t > 0 else 0.0
  return {"mse": tot["mse"] / n, "nll": tot["nll"] / n, "critic_mean": mean_p,
          "critic_std": float(np.sqrt(var_p)), "critic_r": float(r), "target_mean": mean_t}


def _first_bad_step(sums: dict):
  for name, v in sums.items():
    bad = np.flatnonzero(~np.isfinite(np.asarray(v)))
    if bad.size:
      return int(bad[0]), name
  return None


def _pearson(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.size < 2 or a.std() == 0 or b.std() == 0:
    return 0.0
  return float(np.corrcoef(a, b)[0, 1])


def _critic_on_users(run: Run, state, per_user) -> np.ndarray:
  """The critic's estimate for evaluated users (features: fold-in count, held-out count, NLL)."""
  cfg = run.config.critic
  if cfg.kind == "naive":  # Needs the actor's full prediction; not computed at evaluation.
    return np.full(per_user["nll"].shape, np.nan)
  feats = critic_lib.critic_features(jnp.asarray(per_user["nll"], jnp.float32),
                                     jnp.asarray(per_user["n_foldin"], jnp.float32),
                                     jnp.asarray(per_user["n_heldout"], jnp.float32), cfg)
  pred, _ = critic_lib.apply(state["critic"].params, state["critic"].norm_state, feats, cfg,
                             train=False)
  return np.asarray(pred)


def _finalize_model(run: Run, state, name: str, predictions_file: str, results: dict,
                    val_summary: dict, with_critic: bool = False) -> dict:
  """Test evaluation of a selected model: its top-100 export, its per-user values
  (`per_user_test_<name>.npz`, for the paper's Figures 4, 7 and 8) and its `results.json` entry."""
  per_user = run.test.run(run.score_actor, state["actor"].params, run.actor_loss)
  if with_critic:
    per_user["critic"] = _critic_on_users(run, state, per_user)
  test = evaluate.summarize(per_user)
  if run.rec.main:
    evaluate.write_predictions(os.path.join(run.workdir, predictions_file),
                               run.data.test.uids, per_user["top"])
    np.savez(os.path.join(run.workdir, f"per_user_test_{name}.npz"), uids=run.data.test.uids,
             **{k: v for k, v in per_user.items() if k != "top"})
  results[name] = {"validation": val_summary, "test": test}
  run.rec.write_json("results.json", results)
  run.rec.log("test  %-8s ndcg@100 %.4f (±%.4f)  recall@20 %.4f  recall@50 %.4f  [%d users]", name,
              test["ndcg@100"], test["ndcg@100_se"], test["recall@20"], test["recall@50"],
              test["n_users"])
  return per_user


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs (or resumes) the configured stages and returns the `results.json` content."""
  run = Run(config, workdir)
  rec = run.rec
  lengths = stage_lengths(config)
  state = run.initial_state()
  counts = {"actor": actors.param_count(state["actor"].params),
            "critic": actors.param_count(state["critic"].params)}
  rec.banner(run.mesh, run.data, config, counts)
  rec.write_json("config.json", config.to_dict())

  results = rec.read_json("results.json", {}) or {}
  results.update(baseline_eval.evaluate_baselines(config, run, results))
  rec.write_json("results.json", results)

  total = sum(lengths)
  start, best_score, best_val = 0, -np.inf, {}
  latest = run.ckpt.latest_step()
  if latest is not None:
    state = run.ckpt.restore(latest, state)
    start = latest + 1
    best_score, best_val = rec.truncate_metrics_after(latest)
    rec.log("resumed from the checkpoint of global epoch %d (%s epoch %d/%d)", latest + 1,
            *stage_of(latest, lengths))
  for e in range(start, total):
    stage, k, n_stage = stage_of(e, lengths)
    if e == lengths[0]:  # Stage 1 -> 2: the best actor, a fresh critic (Pitfall 9).
      if config.pretrained_actor:
        best_params = checkpoint.load_actor(config.pretrained_actor, state["actor"].params)
        source = config.pretrained_actor
        best_val = evaluate.summarize(run.val.run(run.score_actor, best_params, run.actor_loss))
      else:
        best = run.ckpt.best_step()
        best_params = run.ckpt.restore(best, state)["actor"].params
        checkpoint.save_actor(workdir, best_params)
        source = f"global epoch {best + 1}"
      state = dict(state, actor=state["actor"]._replace(params=best_params))
      _finalize_model(run, state, "actor", "predictions_test_actor.tsv", results, best_val)
      critic, ac_opt = run.fresh_critic(best_params)
      state = {"actor": state["actor"], "critic": critic, "ac_opt": ac_opt}
      rec.log("stage 2: critic pre-training from the best actor (%s)", source)

    t0 = records.now()
    carry, sums = run.epoch_fn(stage)(_stage_carry(stage, state), run.csr, run.epoch_key(e))
    sums = jax.tree.map(evaluate.to_host, sums)
    seconds = records.now() - t0
    rec.epoch_time(stage, seconds)
    bad = _first_bad_step(sums)
    new_state = _merge_carry(stage, state, carry)
    if bad is None and not bool(loops.all_finite(new_state)):
      bad = (run.steps_per_epoch - 1, "parameters")
    if bad is not None:
      raise NonFiniteError(
          f"non-finite {bad[1]} in stage '{stage}', epoch {k}/{n_stage}, step {bad[0] + 1}/"
          f"{run.steps_per_epoch} (global epoch {e + 1}); the last good checkpoint (global epoch "
          f"{e}) is kept in {run.ckpt.manager.directory}. Lower the learning rate or check the data.")
    state = new_state
    train = _train_summary(stage, sums)

    per_user = run.val.run(run.score_actor, state["actor"].params, run.actor_loss)
    val = evaluate.summarize(per_user)
    score = val[VALIDATION_METRIC]
    row = {"global_epoch": e, "stage": stage, "epoch": k, "epochs": n_stage, **train,
           "seconds": seconds, "users_per_s": run.data.train.n_rows / seconds,
           "val": {m: val[m] for m in val if not m.endswith("_se")}}
    if stage != "actor":
      pred = _critic_on_users(run, state, per_user)
      has = per_user["n_heldout"] > 0
      row["val"]["critic_r"] = _pearson(pred[has], per_user["ndcg@100"][has])
      row["val"]["critic_mse"] = float(np.mean((pred[has] - per_user["ndcg@100"][has]) ** 2))
      if train["critic_std"] < 1e-4:
        rec.warn(f"DEAD CRITIC: its output is constant (std {train['critic_std']:.2e}) in "
                 f"{stage} epoch {k}: stage 3 cannot move the actor. Try "
                 "--config.critic.normalize=batchnorm or another --config.critic.seed.")
    if score > best_score:
      best_score, best_val = score, dict(val)
    row["best_val_ndcg@100"] = best_score
    rec.append_metrics(row)
    left_after = {"critic": lengths[1], "ac": lengths[2]}
    left_after = {s: n for s, n in left_after.items()
                  if ["actor", "critic", "ac"].index(s) > ["actor", "critic", "ac"].index(stage)}
    eta_stage, eta_total = rec.eta(stage, n_stage - k, left_after)
    if stage == "actor":
      loss_text = f"nll {train['nll']:.2f}  kl {train['kl']:.2f}  beta {train['beta']:.4f}"
    else:
      loss_text = (f"mse {train['mse']:.5f}  critic std {train['critic_std']:.4f}  r "
                   f"{train['critic_r']:.3f}  nll {train['nll']:.2f}")
    val_text = (f"val ndcg@100 {score:.4f} r@20 {val['recall@20']:.4f} r@50 {val['recall@50']:.4f}"
                f" (best {best_score:.4f})")
    if stage != "actor":
      val_text += f" critic r {row['val']['critic_r']:.3f}"
    rec.log("%-6s epoch %3d/%d  %s | %s users/s  ETA %s (total %s) | %s", stage, k, n_stage,
            loss_text, f"{row['users_per_s']:,.0f}", eta_stage, eta_total, val_text)
    run.ckpt.save(e, state, score)

  # ---- Final: the best-by-validation model on the test users. ----------------------------------
  best = run.ckpt.best_step()
  final_state = run.ckpt.restore(best, state)
  if lengths[1] + lengths[2] == 0:  # Stage 1 only: the actor is the final model.
    _finalize_model(run, final_state, "actor", "predictions_test_actor.tsv", results, best_val)
    if rec.main:
      shutil.copyfile(os.path.join(workdir, "predictions_test_actor.tsv"),
                      os.path.join(workdir, "predictions_test.tsv"))
  else:
    per_user = _finalize_model(run, final_state, "ract", "predictions_test.tsv", results, best_val,
                               with_critic=True)
    has = per_user["n_heldout"] > 0
    results["ract"]["diagnostics"] = {  # Paper Figure 4 / 6 (test users).
        "test_pearson_critic_vs_ndcg@100": _pearson(per_user["critic"][has],
                                                    per_user["ndcg@100"][has]),
        "test_pearson_nll_vs_ndcg@100": _pearson(per_user["nll"][has], per_user["ndcg@100"][has]),
        "best_global_epoch": int(best) + 1,
        "best_stage": stage_of(int(best), lengths)[0],
    }
  rec.write_json("results.json", results)
  rec.log("test users (%d), best-by-validation models:\n%s", run.data.test.n_users,
          records.comparison_table(results))
  run.ckpt.close()
  return results
