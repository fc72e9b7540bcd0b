"""Mult-DAE (Liang et al. 2018) and the linear autoencoders of Table 2: layers and forward pass.

Shapes (`config.actor.shape`):
  'ract':   I -> 600 tanh -> 200 -> 600 tanh -> I (RaCT's DAE).
  'liang':  I -> 200 tanh -> I (Liang et al.'s DAE).
  'linear': I -> 200 -> I, no non-linearity (the MF / WARP actors of Table 2).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax.actors.base import ActorOutput, FirstLayer, choose, dense


def _dims_ract(m, h, l):
  return [("enc0", m, h), ("enc1", h, l), ("dec0", l, h), ("dec1", h, m)]


def _dims_shallow(m, h, l):
  return [("enc0", m, l), ("dec1", l, m)]


# `p` is config.actor.matmul_precision (base.MATMULS).
def _hidden_ract(params, first: FirstLayer, p):
  h = jnp.tanh(first(params["enc0"]["w"]) + params["enc0"]["b"])
  return jnp.tanh(dense(params["dec0"], dense(params["enc1"], h, p), p))


def _hidden_liang(params, first: FirstLayer, p):
  del p  # Only the first layer, which `first` computes.
  return jnp.tanh(first(params["enc0"]["w"]) + params["enc0"]["b"])


def _hidden_linear(params, first: FirstLayer, p):
  del p
  return first(params["enc0"]["w"]) + params["enc0"]["b"]


# shape -> (layer dims, the last hidden layer): one row per shape, so names always agree.
SHAPES = {
    "ract": (_dims_ract, _hidden_ract),
    "liang": (_dims_shallow, _hidden_liang),
    "linear": (_dims_shallow, _hidden_linear),
}


def layer_dims(config: ml_collections.ConfigDict, n_items: int):
  """(name, fan_in, fan_out) of every dense layer of `config.actor`'s shape."""
  dims, _ = choose(SHAPES, config.shape, "config.actor.shape")
  return dims(n_items, config.hidden_dim, config.latent_dim)


def forward(params: dict, config: ml_collections.ConfigDict, first: FirstLayer, users: jax.Array,
            key: jax.Array, train: bool) -> ActorOutput:
  """Logits of a denoising autoencoder (no posterior: kl is 0). Args as `vae.forward`."""
  del key, train  # Deterministic given its (already masked) input.
  _, hidden = choose(SHAPES, config.shape, "config.actor.shape")
  p = config.matmul_precision
  logits = dense(params["dec1"], hidden(params, first, p), p)
  return ActorOutput(logits=logits, kl=jnp.zeros(users.shape, jnp.float32))
