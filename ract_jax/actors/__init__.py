"""Actors as pure functions: a registry of model families, each holding its layers and forward pass.

  FAMILIES[config.actor.kind] -> module with `layer_dims(config, n_items)` and
      `forward(params, config, first, users, key, train) -> ActorOutput`
  init(rng, config.actor, n_items) -> params       apply(params, config.actor, x, key, train)
  per_user_loss / l2_penalty / beta_at              the terms of the actor's objective (eq. 4)

Every family reads the batch through its first layer `first(w) -> x @ w`, in one of two forms
(`FIRST_LAYERS`, chosen by `first_layer_form` from `config.actor.first_layer` and the density):
'sparse' (`sparse_layer`: a gather and segment sum over the batch's entries, no `[B, M]` input)
or 'dense' (the `[B, M]` input scattered inside jit, one matmul); everything after it is dense.
Adding an actor: one module here with `layer_dims` and `forward`, one `FAMILIES` entry, a preset in
`config_base.ACTOR_PRESETS`, and a test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax.actors import dae, item_item, sparse_layer, vae
from ract_jax.actors.base import (ActorOutput, SparseInput, choose, init_dense, input_values,
                                  matmul_fn)
from ract_jax.actors.objective import beta_at, l2_penalty, per_user_loss

FAMILIES = {"multvae": vae, "multdae": dae, "item_item": item_item}

__all__ = ["FAMILIES", "FIRST_LAYERS", "ActorOutput", "SparseInput", "apply", "beta_at",
           "first_layer_form", "init", "input_values", "l2_penalty", "layer_dims", "param_count",
           "per_user_loss"]


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


def _sparse_first(x: SparseInput, config, chunk: int):
  del config  # A gather and a sum: float32 whatever config.actor.matmul_precision says.
  n_rows = x.users.shape[0]
  return lambda w: sparse_layer.sparse_rows_matmul(x.seg, x.item, x.values, w, n_rows, chunk)


def _dense_first(x: SparseInput, config, chunk: int):
  del chunk
  matmul = matmul_fn(config.matmul_precision)

  def first(w):
    # Padding entries have value 0, so adding them anywhere changes nothing; repeated entries add
    # up, as in the sparse form. Built inside jit from the device batch: no host copy.
    rows = jnp.zeros((x.users.shape[0], w.shape[0]), w.dtype).at[x.seg, x.item].add(
        x.values.astype(w.dtype))
    return matmul(rows, w)

  return first


# The forms of the first layer: (input, config.actor, chunk) -> first(w). Equal up to the order of
# float summation (tests/test_actors.py).
FIRST_LAYERS = {"sparse": _sparse_first, "dense": _dense_first}


def first_layer_form(config: ml_collections.ConfigDict, density: float) -> str:
  """The first layer's form for data of this density (`config.actor.first_layer`, 'auto': dense
  at or above `config.actor.dense_above_density`, where the dense matmul measured faster).

  Args:
    config: `config.actor`.
    density: interactions / (users x items) of the training data.

  Returns:
    A key of `FIRST_LAYERS`.
  """
  if config.first_layer == "auto":
    return "dense" if density >= config.dense_above_density else "sparse"
  choose(FIRST_LAYERS, config.first_layer, "config.actor.first_layer")
  return config.first_layer


def apply(params: dict, config: ml_collections.ConfigDict, x: SparseInput, key: jax.Array,
          train: bool, chunk: int = sparse_layer.DEFAULT_CHUNK,
          first_layer: str = "sparse") -> ActorOutput:
  """The actor's logits over all items for a batch.

  Args:
    params: from `init`.
    config: `config.actor`.
    x: the batch's sparse input.
    key: PRNG key for the VAE's posterior sample (used only when `train`).
    train: training mode (sample z) or evaluation (z = mu).
    chunk: entries per iteration of the sparse first layer.
    first_layer: the first layer's form, a key of `FIRST_LAYERS` (see `first_layer_form`).

  Returns:
    `ActorOutput(logits [B, M], kl [B])`.
  """
  first = choose(FIRST_LAYERS, first_layer, "first_layer")(x, config, chunk)
  return family(config).forward(params, config, first, x.users, key, train)


def param_count(params: dict) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))
