"""Actors as pure functions: a registry of model families, each holding its layers and forward pass.

  FAMILIES[config.actor.kind] -> module with `layer_dims(config, n_items)` and
      `forward(params, config, first, users, key, train) -> ActorOutput`
  init(rng, config.actor, n_items) -> params       apply(params, config.actor, x, key, train)
  per_user_loss / l2_penalty / beta_at              the terms of the actor's objective (eq. 4)

Every family reads the batch through the sparse first layer (`sparse_layer`: `x @ W` without a dense
`[B, M]` input); everything after it is dense. Adding an actor: one module here with `layer_dims` and
`forward`, one `FAMILIES` entry, a preset in `config_base.ACTOR_PRESETS`, and a test.
"""

from __future__ import annotations

import jax
import ml_collections

from ract_jax.actors import dae, item_item, sparse_layer, vae
from ract_jax.actors.base import ActorOutput, SparseInput, choose, init_dense, input_values
from ract_jax.actors.objective import beta_at, l2_penalty, per_user_loss

FAMILIES = {"multvae": vae, "multdae": dae, "item_item": item_item}

__all__ = ["FAMILIES", "ActorOutput", "SparseInput", "apply", "beta_at", "init", "input_values",
           "l2_penalty", "layer_dims", "param_count", "per_user_loss"]


def family(config: ml_collections.ConfigDict):
  """The module of `config.actor.kind`."""
  return choose(FAMILIES, config.kind, "config.actor.kind")


def layer_dims(config: ml_collections.ConfigDict, n_items: int) -> list[tuple[str, int, int]]:
  """The (name, fan_in, fan_out) of every dense layer of the configured actor."""
  return family(config).layer_dims(config, n_items)


def init(rng: jax.Array, config: ml_collections.ConfigDict, n_items: int) -> dict:
  """Initial actor parameters: Glorot-uniform weights, truncated-normal(0.001) biases (Table 4).

  Args:
    rng: a PRNG key.
    config: `config.actor`.
    n_items: M.

  Returns:
    `{layer: {"w": float32 [fan_in, fan_out], "b": float32 [fan_out]}}` (a family with its own
    `init`, e.g. the item-item actor, sets its values itself).
  """
  fam = family(config)
  if hasattr(fam, "init"):
    return fam.init(rng, config, n_items)
  return init_dense(rng, layer_dims(config, n_items))


def apply(params: dict, config: ml_collections.ConfigDict, x: SparseInput, key: jax.Array,
          train: bool, chunk: int = sparse_layer.DEFAULT_CHUNK) -> ActorOutput:
  """The actor's logits over all items for a batch.

  Args:
    params: from `init`.
    config: `config.actor`.
    x: the batch's sparse input.
    key: PRNG key for the VAE's posterior sample (used only when `train`).
    train: training mode (sample z) or evaluation (z = mu).
    chunk: entries per iteration of the sparse first layer.

  Returns:
    `ActorOutput(logits [B, M], kl [B])`.
  """
  n_rows = x.users.shape[0]

  def first(w):
    return sparse_layer.sparse_rows_matmul(x.seg, x.item, x.values, w, n_rows, chunk)

  return family(config).forward(params, config, first, x.users, key, train)


def param_count(params: dict) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))
