"""Actors as pure functions: Mult-VAE and Mult-DAE (Liang et al. 2018; RaCT paper §2, Table 4).

Parameters are plain nested dicts `{layer: {"w": [in, out], "b": [out]}}`. The first layer reads the
sparse batch entries directly (see `sparse_layer`); everything after it is dense.

Shapes (`config.actor.shape`):
  VAE, 'ract':    I -> 600 tanh -> (mu 200, logvar 200) heads; z -> 600 tanh -> I logits.
  VAE, 'liang':   I -> 600 tanh -> 400 linear, split into mu / logvar; z -> 600 tanh -> I.
  VAE, 'linear':  I -> (mu 200, logvar 200) linear heads; z -> I linear (Table 2 "VAE (Linear)").
  DAE, 'ract':    I -> 600 tanh -> 200 -> 600 tanh -> I.
  DAE, 'liang':   I -> 200 tanh -> I.
  DAE, 'linear':  I -> 200 -> I, no non-linearity (the authors' MF / WARP encoders, notes §2).
Weights Glorot-uniform, biases truncated normal with std 0.001 (notes §2, Pitfall 14).
`config.actor.deterministic` makes the VAE's posterior a delta at mu (Table 2 "VAE (beta = 0)").
The training loss (`config.actor.loss`, see `losses.py`) is chosen independently of the shape.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax import losses, sparse_layer
from ract_jax.data import batches

KINDS = ("multvae", "multdae")
SHAPES = ("ract", "liang", "linear")


class SparseInput(NamedTuple):
  """The actor's input for a batch, as sparse entries (see `batches.Entries`).

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


def layer_dims(config: ml_collections.ConfigDict, n_items: int) -> list[tuple[str, int, int]]:
  """The (name, fan_in, fan_out) of every dense layer of the configured actor."""
  kind, shape = config.kind, config.shape
  if kind not in KINDS:
    raise ValueError(f"config.actor.kind={kind!r}: expected one of {KINDS}.")
  if shape not in SHAPES:
    raise ValueError(f"config.actor.shape={shape!r}: expected one of {SHAPES}.")
  h, l = config.hidden_dim, config.latent_dim
  if kind == "multvae" and shape == "ract":
    return [("enc0", n_items, h), ("mu", h, l), ("logvar", h, l), ("dec0", l, h), ("dec1", h, n_items)]
  if kind == "multvae" and shape == "liang":
    return [("enc0", n_items, h), ("enc1", h, 2 * l), ("dec0", l, h), ("dec1", h, n_items)]
  if kind == "multvae":  # linear: enc0 is the mu head, logvar a second head on the same input.
    return [("enc0", n_items, l), ("logvar", n_items, l), ("dec1", l, n_items)]
  if shape == "ract":
    return [("enc0", n_items, h), ("enc1", h, l), ("dec0", l, h), ("dec1", h, n_items)]
  return [("enc0", n_items, l), ("dec1", l, n_items)]


def init(rng: jax.Array, config: ml_collections.ConfigDict, n_items: int) -> dict:
  """Initial actor parameters.

  Args:
    rng: a PRNG key.
    config: `config.actor`.
    n_items: M.

  Returns:
    `{layer: {"w": float32 [fan_in, fan_out], "b": float32 [fan_out]}}`.
  """
  params = {}
  glorot = jax.nn.initializers.glorot_uniform()
  for i, (name, fan_in, fan_out) in enumerate(layer_dims(config, n_items)):
    kw, kb = jax.random.split(jax.random.fold_in(rng, i))
    params[name] = {
        "w": glorot(kw, (fan_in, fan_out), jnp.float32),
        "b": 0.001 * jax.random.truncated_normal(kb, -2.0, 2.0, (fan_out,), jnp.float32),
    }
  return params


def input_values(counts: jax.Array, seg: jax.Array, kept: jax.Array,
                 keep_prob: float, train: bool) -> jax.Array:
  """The first layer's input on each entry: l2-normalised full row, masked, rescaled (Pitfall 4).

  Args:
    counts: int32 `[B]` items per user (the full row: its l2 norm is sqrt(count)).
    seg: int32 `[cap]` row of each entry.
    kept: bool `[cap]` the mask b in training (real entries only), all real entries at evaluation.
    keep_prob: the Bernoulli keep probability (dropout divides by it in training).
    train: training (mask and rescale) or evaluation (all entries, no rescale).

  Returns:
    float32 `[cap]`.
  """
  norm = jax.lax.rsqrt(jnp.maximum(counts, 1).astype(jnp.float32))[seg]
  scale = norm / keep_prob if train else norm
  return jnp.where(kept, scale, 0.0)


def _dense(p, x):
  return x @ p["w"] + p["b"]


def apply(params: dict, config: ml_collections.ConfigDict, x: SparseInput, key: jax.Array,
          train: bool, chunk: int = sparse_layer.DEFAULT_CHUNK) -> ActorOutput:
  """The actor's logits over all items for a batch.

  Args:
    params: from `init`.
    config: `config.actor`.
    x: the batch's sparse input.
    key: PRNG key for the VAE's posterior sample (used only when `train`).
    train: sample z = mu + eps * sigma (training) or take z = mu (evaluation).
    chunk: entries per iteration of the sparse first layer.

  Returns:
    `ActorOutput(logits [B, M], kl [B])`; kl is the per-user KL(q(z|x) || N(0, I)) (eq. 4).
  """
  b = x.users.shape[0]
  sparse = lambda w: sparse_layer.sparse_rows_matmul(x.seg, x.item, x.values, w, b, chunk)
  first = sparse(params["enc0"]["w"]) + params["enc0"]["b"]
  kl = jnp.zeros((b,), jnp.float32)
  if config.kind == "multvae":
    if config.shape == "linear":
      mu, logvar = first, sparse(params["logvar"]["w"]) + params["logvar"]["b"]
    elif config.shape == "ract":
      h = jnp.tanh(first)
      mu, logvar = _dense(params["mu"], h), _dense(params["logvar"], h)
    else:
      mu, logvar = jnp.split(_dense(params["enc1"], jnp.tanh(first)), 2, axis=-1)
    if config.deterministic:  # Delta posterior: no sampling, no KL (Table 2, "VAE (beta = 0)").
      z = mu
    else:
      kl = jnp.sum(0.5 * (-logvar + jnp.exp(logvar) + mu**2 - 1.0), axis=-1)
      z = mu + batches.user_normal(key, x.users, mu.shape[-1]) * jnp.exp(0.5 * logvar) \
          if train else mu
    h = z if config.shape == "linear" else jnp.tanh(_dense(params["dec0"], z))
  elif config.shape == "ract":
    h = jnp.tanh(_dense(params["dec0"], _dense(params["enc1"], jnp.tanh(first))))
  elif config.shape == "liang":
    h = jnp.tanh(first)
  else:
    h = first
  return ActorOutput(logits=_dense(params["dec1"], h), kl=kl)


def per_user_loss(config: ml_collections.ConfigDict, logits: jax.Array, x: jax.Array) -> jax.Array:
  """The configured per-user training loss (`config.loss`, see `losses.py`), float32 `[B]`.

  This is eq. 4's L_E for the multinomial likelihood, and the critic's first feature (eq. 5) for
  every actor (the paper replaces the NLL by the L2R loss for WARP / LambdaRank actors).
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
  """The KL weight at a global stage-1 step (0-based).

  'epochs' (default, paper Table 5): beta rises linearly to `anneal_cap` over `anneal_epochs` epochs,
  then stays. 'steps' (the authors' code): `min(anneal_cap, step / total_anneal_steps)`.
  """
  step = jnp.asarray(step, jnp.float32)
  if config.anneal_schedule == "steps":
    return jnp.minimum(config.anneal_cap, step / config.total_anneal_steps)
  if config.anneal_schedule != "epochs":
    raise ValueError(f"config.actor.anneal_schedule={config.anneal_schedule!r}: "
                     "expected 'epochs' or 'steps'.")
  total = max(1, config.anneal_epochs * steps_per_epoch)
  return config.anneal_cap * jnp.minimum(1.0, step / total)


def param_count(params: dict) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))
