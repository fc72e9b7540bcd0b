"""The terms of the actor's MLE objective: the per-user loss L_E, the KL weight beta, the L2 term."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax import losses


def per_user_loss(config: ml_collections.ConfigDict, logits: jax.Array, x: jax.Array) -> jax.Array:
  """The configured per-user training loss (`config.loss`, see `losses.py`), float32 `[B]`.

  This is eq. 4's L_E for the multinomial likelihood, and the critic's first feature (eq. 5) for
  every actor (section 5 replaces the NLL by the L2R loss for WARP / LambdaRank actors).

  Args:
    config: `config.actor`.
    logits: float `[B, M]`.
    x: float `[B, M]` the user's full row.
  """
  kw = {}
  if config.loss == "weighted_sq":
    kw = {"positive_weight": config.positive_weight}
  elif config.loss == "warp":
    kw = {"margin": config.warp_margin, "rank": config.warp_rank}
  return losses.per_user_loss(config.loss, logits, x, **kw)


def l2_penalty(params: dict, config: ml_collections.ConfigDict) -> jax.Array:
  """`config.l2 * sum(theta^2)` over weights (and biases if `config.l2_on_biases`).

  Liang's DAE: l2 = 0.01 / batch on weights only; RaCT's DAE: 1e-5 on all parameters; VAE: 0.
  """
  if not config.l2:
    return jnp.zeros((), jnp.float32)
  total = 0.0
  for layer in params.values():
    total += jnp.sum(layer["w"] ** 2)
    if config.l2_on_biases:
      total += jnp.sum(layer["b"] ** 2)
  return config.l2 * total


def beta_at(step: jax.Array, config: ml_collections.ConfigDict, steps_per_epoch: int) -> jax.Array:
  """The KL weight beta of eq. 4 at a global stage-1 step (0-based).

  'epochs' (default, Table 5): beta rises linearly to `anneal_cap` over `anneal_epochs` epochs, then
  stays. 'steps': `min(anneal_cap, step / total_anneal_steps)`.
  """
  step = jnp.asarray(step, jnp.float32)
  if config.anneal_schedule == "steps":
    return jnp.minimum(config.anneal_cap, step / config.total_anneal_steps)
  if config.anneal_schedule != "epochs":
    raise ValueError(f"config.actor.anneal_schedule={config.anneal_schedule!r}: "
                     "expected 'epochs' or 'steps'.")
  total = max(1, config.anneal_epochs * steps_per_epoch)
  return config.anneal_cap * jnp.minimum(1.0, step / total)
