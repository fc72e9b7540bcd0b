"""Mult-VAE (Liang et al. 2018; RaCT paper section 2, eq. 1-4, Table 4): its layers and forward pass.

Shapes (`config.actor.shape`):
  'ract':   I -> 600 tanh -> (mu 200, logvar 200) heads; z -> 600 tanh -> I logits.
  'liang':  I -> 600 tanh -> 400 linear, split into mu / logvar; z -> 600 tanh -> I.
  'linear': I -> (mu 200, logvar 200) linear heads; z -> I linear (Table 2 "VAE (Linear)").
`config.actor.deterministic` makes the posterior a delta at mu (Table 2 "VAE (beta = 0)").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax.actors.base import ActorOutput, FirstLayer, choose, dense
from ract_jax.device import batches


def _dims_ract(m, h, l):
  return [("enc0", m, h), ("mu", h, l), ("logvar", h, l), ("dec0", l, h), ("dec1", h, m)]


def _dims_liang(m, h, l):
  return [("enc0", m, h), ("enc1", h, 2 * l), ("dec0", l, h), ("dec1", h, m)]


def _dims_linear(m, h, l):  # enc0 is the mu head; logvar a second head on the same input.
  return [("enc0", m, l), ("logvar", m, l), ("dec1", l, m)]


# Encoders and decoders take `p`, config.actor.matmul_precision (base.MATMULS).
def _encode_ract(params, first: FirstLayer, p):
  h = jnp.tanh(first(params["enc0"]["w"]) + params["enc0"]["b"])
  return dense(params["mu"], h, p), dense(params["logvar"], h, p)


def _encode_liang(params, first: FirstLayer, p):
  h = jnp.tanh(first(params["enc0"]["w"]) + params["enc0"]["b"])
  return tuple(jnp.split(dense(params["enc1"], h, p), 2, axis=-1))


def _encode_linear(params, first: FirstLayer, p):
  del p  # Only the first layer, which `first` computes.
  return (first(params["enc0"]["w"]) + params["enc0"]["b"],
          first(params["logvar"]["w"]) + params["logvar"]["b"])


def _decode_mlp(params, z, p):
  return dense(params["dec1"], jnp.tanh(dense(params["dec0"], z, p)), p)


def _decode_linear(params, z, p):
  return dense(params["dec1"], z, p)


# shape -> (layer dims, encoder, decoder): one row per shape, so names always agree.
SHAPES = {
    "ract": (_dims_ract, _encode_ract, _decode_mlp),
    "liang": (_dims_liang, _encode_liang, _decode_mlp),
    "linear": (_dims_linear, _encode_linear, _decode_linear),
}


def layer_dims(config: ml_collections.ConfigDict, n_items: int):
  """(name, fan_in, fan_out) of every dense layer of `config.actor`'s shape."""
  dims, _, _ = choose(SHAPES, config.shape, "config.actor.shape")
  return dims(n_items, config.hidden_dim, config.latent_dim)


def forward(params: dict, config: ml_collections.ConfigDict, first: FirstLayer, users: jax.Array,
            key: jax.Array, train: bool) -> ActorOutput:
  """Logits and per-user KL(q(z|x) || N(0, I)) (eq. 4).

  Args:
    params: from `actors.init`.
    config: `config.actor`.
    first: the first layer on the batch's sparse input.
    users: int32 `[B]` global user ids (the noise epsilon is keyed by user).
    key: PRNG key of the posterior sample (used only when `train`).
    train: sample z = mu + eps * sigma (training) or take z = mu (evaluation).

  Returns:
    `ActorOutput(logits [B, M], kl [B])`.
  """
  _, encode, decode = choose(SHAPES, config.shape, "config.actor.shape")
  p = config.matmul_precision
  mu, logvar = encode(params, first, p)
  if config.deterministic:  # Delta posterior: no sampling, no KL.
    return ActorOutput(logits=decode(params, mu, p), kl=jnp.zeros(mu.shape[:1], jnp.float32))
  kl = jnp.sum(0.5 * (-logvar + jnp.exp(logvar) + mu**2 - 1.0), axis=-1)
  z = mu + batches.user_normal(key, users, mu.shape[-1]) * jnp.exp(0.5 * logvar) if train else mu
  return ActorOutput(logits=decode(params, z, p), kl=kl)
