"""What every actor shares: its sparse input, its output, the input normalisation and dense layers.

Parameters are plain nested dicts `{layer: {"w": [fan_in, fan_out], "b": [fan_out]}}`, float32.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

Dims = Sequence[tuple[str, int, int]]  # (layer name, fan_in, fan_out) of each dense layer.


class SparseInput(NamedTuple):
  """The actor's input for a batch, as sparse entries (see `device.batches.Entries`).

  seg, item: int32 `[cap]`; values: float32 `[cap]` (normalised, masked input values; 0 = absent);
  users: int32 `[B]` global user ids (keys the VAE's noise).
  """

  seg: jax.Array
  item: jax.Array
  values: jax.Array
  users: jax.Array


class ActorOutput(NamedTuple):
  logits: jax.Array  # float32 [B, M]
  kl: jax.Array  # float32 [B]; zeros for deterministic actors.


# `first(w) -> x @ w` for the batch's sparse input x: the first layer without a dense [B, M] input.
FirstLayer = Callable[[jax.Array], jax.Array]


def input_values(counts: jax.Array, seg: jax.Array, kept: jax.Array,
                 keep_prob: float, train: bool, norm: str = "l2") -> jax.Array:
  """The first layer's input on each entry: l2-normalised full row, masked, rescaled (eq. 2).

  With `norm='binary'` (`config.actor.input_norm`; the item-item actor) the input is the raw 0/1
  row, masked but neither normalised nor rescaled: EASE's scores x B are defined on it, and a row
  with a share `keep_prob` of its items kept is what evaluation's fold-in row looks like.

  Args:
    counts: int32 `[B]` items per user (the full row: its l2 norm is sqrt(count)).
    seg: int32 `[cap]` row of each entry.
    kept: bool `[cap]` the mask b in training (real entries only), all real entries at evaluation.
    keep_prob: the Bernoulli keep probability (dropout divides by it in training).
    train: training (mask and rescale) or evaluation (all entries, no rescale).
    norm: 'l2' (eq. 2) or 'binary'.

  Returns:
    float32 `[cap]`.
  """
  if norm == "binary":
    return kept.astype(jnp.float32)
  if norm != "l2":
    raise ValueError(f"config.actor.input_norm={norm!r}: expected one of ('l2', 'binary').")
  norm = jax.lax.rsqrt(jnp.maximum(counts, 1).astype(jnp.float32))[seg]
  scale = norm / keep_prob if train else norm
  return jnp.where(kept, scale, 0.0)


def init_dense(rng: jax.Array, dims: Dims) -> dict:
  """Dense layers: Glorot-uniform weights, biases truncated normal with std 0.001 (Table 4).

  Args:
    rng: a PRNG key; layer i draws from `fold_in(rng, i)`.
    dims: (name, fan_in, fan_out) per layer.

  Returns:
    `{name: {"w": float32 [fan_in, fan_out], "b": float32 [fan_out]}}`.
  """
  params = {}
  glorot = jax.nn.initializers.glorot_uniform()
  for i, (name, fan_in, fan_out) in enumerate(dims):
    kw, kb = jax.random.split(jax.random.fold_in(rng, i))
    params[name] = {
        "w": glorot(kw, (fan_in, fan_out), jnp.float32),
        "b": 0.001 * jax.random.truncated_normal(kb, -2.0, 2.0, (fan_out,), jnp.float32),
    }
  return params


def dense(layer: dict, x: jax.Array) -> jax.Array:
  return x @ layer["w"] + layer["b"]


def choose(table: dict, key: str, option: str):
  """`table[key]`, or a ValueError naming the config option and the choices."""
  if key not in table:
    raise ValueError(f"{option}={key!r}: expected one of {tuple(table)}.")
  return table[key]
