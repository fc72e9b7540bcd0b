"""The item-item actor: logits = tau * x B, B an M x M matrix with a zero diagonal (EASE's model).

Beyond the paper (issue 14): RaCT on top of the strongest simple actor. The input x is the raw 0/1
row (`config.actor.input_norm='binary'`, set by the `:item_item` preset), because EASE's closed form
(Steck 2019) is defined on raw binary rows: with B from `baselines.ease.fit` the logits at
initialisation are EASE's scores exactly (times tau). In training the Bernoulli mask b keeps each
item with `keep_prob` (0.8 in the preset, the 80/20 fold-in / held-out split of evaluation) and is
not rescaled, so training inputs look like evaluation's fold-in rows.

tau (`config.actor.item_item_scale`) multiplies every logit: it never changes a ranking, only the
softmax temperature of the multinomial NLL (eq. 4), the critic's first feature (eq. 5); EASE's raw
scores (about -0.5..1) make a nearly uniform softmax over M items otherwise.

Shapes (`config.actor.shape`):
  'full':    every entry of B is trained (M^2 parameters).
  'lowrank': B = B0 + U V with B0 frozen (`stop_gradient`, e.g. EASE's solution) and U [M, r],
             V [r, M] trained, r = `config.actor.latent_dim`; V starts at 0 so that B = B0.
The diagonal is masked in the forward pass (B * (1 - I)), so no gradient ever reaches it. Parameters
follow the dense-layer layout `{name: {"w", "b"}}` (the portable model reads them by `layer_dims`);
"item"'s bias is a per-item offset (0 at initialisation), "u"'s and "v"'s biases are unused.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax.actors.base import ActorOutput, FirstLayer, choose, init_dense


def _dims_full(m, r):
  del r
  return [("item", m, m)]


def _dims_lowrank(m, r):
  return [("item", m, m), ("u", m, r), ("v", r, m)]


def _weights_full(params):
  return params["item"]["w"]


def _weights_lowrank(params):
  return jax.lax.stop_gradient(params["item"]["w"]) + params["u"]["w"] @ params["v"]["w"]


# shape -> (layer dims, the M x M weights before the diagonal mask).
SHAPES = {"full": (_dims_full, _weights_full), "lowrank": (_dims_lowrank, _weights_lowrank)}


def layer_dims(config: ml_collections.ConfigDict, n_items: int):
  """(name, fan_in, fan_out) of every parameter block of `config.actor`'s shape."""
  dims, _ = choose(SHAPES, config.shape, "config.actor.shape")
  return dims(n_items, config.latent_dim)


def init(rng: jax.Array, config: ml_collections.ConfigDict, n_items: int) -> dict:
  """B = 0 (a blank item-item model: stage 1 or an EASE warm start fills it), biases 0; for
  'lowrank' U Glorot-uniform and V = 0 (so B0 + U V = B0 at the start).

  Args:
    rng: a PRNG key.
    config: `config.actor`.
    n_items: M.

  Returns:
    `{name: {"w", "b"}}` as `layer_dims`.
  """
  params = init_dense(rng, layer_dims(config, n_items))
  params = jax.tree.map(jnp.zeros_like, params)
  if "u" in params:
    params["u"]["w"] = init_dense(rng, [("u", n_items, config.latent_dim)])["u"]["w"]
  return params


def weights(params: dict, config: ml_collections.ConfigDict) -> jax.Array:
  """The effective M x M matrix B with its diagonal set to 0 (float32 `[M, M]`)."""
  _, effective = choose(SHAPES, config.shape, "config.actor.shape")
  b = effective(params)
  return b * (1.0 - jnp.eye(b.shape[0], dtype=b.dtype))


def forward(params: dict, config: ml_collections.ConfigDict, first: FirstLayer, users: jax.Array,
            key: jax.Array, train: bool) -> ActorOutput:
  """`tau * (x B + c)`, c the per-item offset (0 from EASE). Args as `vae.forward`; kl is 0."""
  del key, train  # Deterministic given its (already masked) input.
  logits = config.item_item_scale * (first(weights(params, config)) + params["item"]["b"])
  return ActorOutput(logits=logits, kl=jnp.zeros(users.shape, jnp.float32))
