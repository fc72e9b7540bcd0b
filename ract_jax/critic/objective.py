"""What the critic is trained on: the oracle's target (eq. 6) and the critic's loss (eq. 6 + L2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax import metrics
from ract_jax.critic import network
from ract_jax.critic.features import CriticInputs

ORACLES = {"ndcg": metrics.ndcg_at_k, "recall": metrics.recall_at_k}


def oracle_target(inputs: CriticInputs, config: ml_collections.ConfigDict) -> jax.Array:
  """The true ranking score y the critic regresses on (eq. 6): NDCG@k (Recall@k, Table 6).

  The input items are excluded from the ranking (scored -inf) and the items to predict are the
  relevant ones. A user with nothing to predict gets 0.

  Args:
    inputs: from `features.critic_inputs`.
    config: `config.critic` (`metric`, `k`).

  Returns:
    float32 `[B]` in [0, 1], gradients stopped.
  """
  if config.metric not in ORACLES:
    raise ValueError(f"config.critic.metric={config.metric!r}: expected one of {tuple(ORACLES)}.")
  scores = jnp.where(inputs.seen > 0, -jnp.inf, jnp.asarray(inputs.logits, jnp.float32))
  relevant = (inputs.unseen > 0).astype(jnp.float32)
  y = ORACLES[config.metric](scores, relevant, int(config.k))
  y = jnp.where(jnp.sum(relevant, axis=-1) > 0, y, 0.0)
  return jax.lax.stop_gradient(y.astype(jnp.float32))


def l2_penalty(params: dict, config: ml_collections.ConfigDict, batch_size: int) -> jax.Array:
  """`config.l2 * sum(theta^2) / batch_size` over weights and biases (the authors' regulariser)."""
  sq = sum(jnp.sum(jnp.square(p)) for p in jax.tree_util.tree_leaves(params))
  return jnp.float32(config.l2) * sq / float(batch_size)


def loss(params: dict, norm_state: dict, inputs: CriticInputs, target: jax.Array,
         config: ml_collections.ConfigDict, *, valid: jax.Array, n_global: jax.Array,
         batch_size: int, axis_name: str | None = None):
  """This device's share of the critic loss: eq. 6's MSE plus the L2 term.

  Training runs per device with pmap semantics (`device.parallel.per_device`): every device
  differentiates its share and the train step sums the gradients over devices (`psum`), which is
  then the gradient of the global loss `mean_valid((y - critic(h))^2) + L2`. So the squared errors
  are summed over this device's valid rows and divided by the global number of valid rows, and the
  L2 term is divided by the number of devices.

  Args:
    params, norm_state: the critic's parameters and normalisation state.
    inputs: from `features.critic_inputs` (gradients are stopped here).
    target: float `[B]` from `oracle_target`.
    config: `config.critic`.
    valid: float 0/1 `[B]` real users on this device.
    n_global: float scalar, real users in the global batch.
    batch_size: the global batch size the L2 term divides by.
    axis_name: the `shard_map` axis (batch-norm statistics are device-global), or None.

  Returns:
    `(loss share, (prediction [B], new_norm_state))`.
  """
  inputs = jax.lax.stop_gradient(inputs)
  pred, new_state = network.predict(params, norm_state, inputs, config, train=True, mask=valid,
                                    axis_name=axis_name)
  share = jnp.sum(((pred - target) ** 2) * valid) / n_global
  n_devices = 1 if axis_name is None else jax.lax.axis_size(axis_name)
  return share + l2_penalty(params, config, batch_size) / n_devices, (pred, new_state)
