"""The whole config checked before any data is prepared or any epoch runs: every value that would
otherwise fail late (after stage 1, say) gets a one-line message naming its key."""

from __future__ import annotations

import ml_collections

from ract_jax import actors, losses
from ract_jax.baselines import search
from ract_jax.critic import features as critic_features, network, objective
from ract_jax.data import formats
from ract_jax.data.protocol import ProtocolParams
from ract_jax.train import summaries
from ract_jax.train import warm_start


def _choice(value, options, key: str) -> None:
  if value not in options:
    raise ValueError(f"config.{key}={value!r}: expected one of {tuple(options)}.")


def _positive(value, key: str, strict: bool = True) -> None:
  if not isinstance(value, (int, float)) or (value <= 0 if strict else value < 0):
    raise ValueError(f"config.{key}={value!r} must be {'> 0' if strict else '>= 0'}.")


def selection_metric(config: ml_collections.ConfigDict) -> str:
  """The validation metric that selects the model: the critic's own metric and cut-off
  (NDCG@100 by default)."""
  return f"{config.critic.metric}@{config.critic.k}"


def uses_critic(config: ml_collections.ConfigDict) -> bool:
  """Whether stage 3 follows the critic (eq. 7) rather than an L2R loss (`config.ac.objective`)."""
  return config.ac.objective == "critic"


def selection_start(config: ml_collections.ConfigDict, stage3_start: int, epoch: int) -> int:
  """The first global epoch whose validation score can select the model, as of global `epoch`.

  RaCT: every epoch (stage 2 evaluates the pre-trained actor, so the best of {actor, stage 3}).
  An L2R fine-tuning (Table 1's WARP / LambdaRank rows): once it has started, only its own epochs,
  as the authors' second `train()` call restarted the best score (training.py).
  """
  if uses_critic(config) or epoch < stage3_start:
    return 0
  return stage3_start


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the key of the first value that cannot run."""
  s, a, k, e = config.schedule, config.actor, config.critic, config.eval
  for name in ("actor_epochs", "critic_epochs", "ac_epochs"):
    _positive(getattr(s, name), f"schedule.{name}", strict=False)
  warm_start.check(config.actor)
  if (s.actor_epochs == 0 and not config.pretrained_actor and config.actor.init == "random"
      and (s.critic_epochs or s.ac_epochs)):
    raise ValueError("config.schedule.actor_epochs=0 with critic/ac epochs: RaCT needs a "
                     "pre-trained actor (paper §3, 'Actor Pre-training'); set actor_epochs >= 1 "
                     "or --config.pretrained_actor=<workdir of a finished stage 1> or a fitted "
                     "start (--config.actor.init=ease with the :item_item preset).")
  if config.pretrained_actor and not (s.critic_epochs or s.ac_epochs):
    raise ValueError("config.pretrained_actor is set but config.schedule.critic_epochs and "
                     "ac_epochs are 0: there is nothing to train.")
  if s.actor_epochs + s.critic_epochs + s.ac_epochs == 0:
    raise ValueError("config.schedule: every stage has 0 epochs; there is nothing to train.")
  _positive(config.batch_size, "batch_size")
  _positive(e.batch_size, "eval.batch_size")

  fam = actors.family(a)
  _choice(a.shape, fam.SHAPES, "actor.shape")
  _choice(a.loss, losses.LOSSES, "actor.loss")
  _choice(a.anneal_schedule, ("epochs", "steps"), "actor.anneal_schedule")
  _choice(a.first_layer, ("auto",) + tuple(actors.FIRST_LAYERS), "actor.first_layer")
  _positive(a.dense_above_density, "actor.dense_above_density", strict=False)
  actors.matmul_fn(a.matmul_precision)
  _choice(a.input_norm, ("l2", "binary"), "actor.input_norm")
  critic_features.feature_names(k)
  if not 0.0 < a.keep_prob <= 1.0:
    raise ValueError(f"config.actor.keep_prob={a.keep_prob} must be in (0, 1].")
  for key in ("hidden_dim", "latent_dim", "learning_rate"):
    _positive(a[key], f"actor.{key}")
  _positive(config.ac.actor_learning_rate, "ac.actor_learning_rate")
  _choice(config.ac.critic_mode, ("eval", "train"), "ac.critic_mode")
  _choice(config.ac.objective, ("critic",) + tuple(losses.LOSSES), "ac.objective")
  if not uses_critic(config) and s.critic_epochs:
    raise ValueError(f"config.ac.objective={config.ac.objective!r} fine-tunes the actor on that loss "
                     "without a critic (Table 1's L2R rows); set config.schedule.critic_epochs=0.")
  _positive(s.min_critic_steps, "schedule.min_critic_steps", strict=False)
  _choice(config.profile, ("paper", "authors"), "profile")

  _choice(k.kind, network.KINDS, "critic.kind")
  _choice(k.normalize, network.NORMALIZE, "critic.normalize")
  _choice(k.metric, objective.ORACLES, "critic.metric")
  if not isinstance(k.k, int) or k.k < 1:
    raise ValueError(f"config.critic.k={k.k!r} must be an integer >= 1 (the oracle's cut-off).")
  _positive(k.learning_rate, "critic.learning_rate")

  _choice(e.empty_users, ("skip", "zero"), "eval.empty_users")
  for key in ("ndcg_ks", "recall_ks"):
    if any(not isinstance(v, int) or v < 1 for v in e[key]):
      raise ValueError(f"config.eval.{key}={tuple(e[key])}: cut-offs must be integers >= 1.")
  metric, cutoff = config.critic.metric, config.critic.k
  if cutoff not in e[f"{metric}_ks"]:
    raise ValueError(f"config.eval.{metric}_ks={tuple(e[f'{metric}_ks'])} lacks {cutoff}: the "
                     f"model is selected on validation {selection_metric(config)} (the critic's "
                     f"metric); add it, e.g. --config.eval.{metric}_ks=\"{tuple(e[f'{metric}_ks']) + (cutoff,)}\".")
  if 100 not in e.ndcg_ks or 20 not in e.recall_ks or 50 not in e.recall_ks:
    raise ValueError("config.eval must keep NDCG@100, Recall@20 and Recall@50 (the paper's Table 1 "
                     f"metrics); got ndcg_ks={tuple(e.ndcg_ks)}, recall_ks={tuple(e.recall_ks)}.")

  formats.get(config.data.format)
  ProtocolParams.from_config(config.data).validate()
  search.check_names(config.baselines)
  _positive(config.checkpoint.every_minutes, "checkpoint.every_minutes", strict=False)
  _positive(config.progress.seconds, "progress.seconds", strict=False)
  if not isinstance(config.progress.epoch_chunks, int) or config.progress.epoch_chunks < 0:
    raise ValueError(f"config.progress.epoch_chunks={config.progress.epoch_chunks!r} must be an "
                     "integer >= 0 (0 = auto, 1 = one dispatch per epoch).")
  _choice(config.progress.tensorboard, ("auto", "off") + tuple(summaries.WRITERS),
          "progress.tensorboard")
  if not isinstance(config.checkpoint.keep, int) or config.checkpoint.keep < 2:
    raise ValueError(f"config.checkpoint.keep={config.checkpoint.keep!r} must be an integer >= 2 "
                     "(the previous state is the fall-back of a damaged latest one).")
