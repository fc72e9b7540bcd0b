"""The one training state of all three stages (paper Algorithm 1), a `flax.struct.PyTreeNode`.

Its array fields are the pytree (checkpointed, donated to the epoch programs, replicated over the
mesh); its optimisers are static fields, so a stage's step function maps `TrainState -> TrainState`
and what a stage does not train passes through unchanged. Stage 1 updates `actor`, `actor_opt` and
`step`; stage 2 `critic`, `critic_norm`, `critic_opt`; stage 3 the actor through `ac_opt` and the
critic. `hand_over` is Algorithm 1's move from stage 1 to stage 2.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from ract_jax import actors
from ract_jax import critic as critic_lib

# fold_in tags of the run's key streams (part of what makes a seed reproduce a run).
INIT_ACTOR, INIT_CRITIC, EPOCHS = 1, 2, 3


class TrainState(struct.PyTreeNode):
  """Actor, critic and their optimiser states.

  Attributes:
    actor: the actor's parameters.
    actor_opt: Adam state of stage 1 (the actor's MLE objective, eq. 4).
    ac_opt: Adam state of the actor in stage 3 (the critic's objective, eq. 7).
    critic: the critic's parameters.
    critic_norm: the critic's feature-normalisation statistics (`{}` for normalize='none').
    critic_opt: Adam state of the critic (eq. 6), stages 2 and 3.
    step: int32 global stage-1 step (drives the KL weight beta).
    tx_actor, tx_ac, tx_critic: the three optimisers (static).
  """

  actor: Any
  actor_opt: Any
  ac_opt: Any
  critic: Any
  critic_norm: Any
  critic_opt: Any
  step: jax.Array
  tx_actor: optax.GradientTransformation = struct.field(pytree_node=False)
  tx_ac: optax.GradientTransformation = struct.field(pytree_node=False)
  tx_critic: optax.GradientTransformation = struct.field(pytree_node=False)

  def apply_actor_gradients(self, grads) -> "TrainState":
    """One stage-1 Adam step on the actor (and the next beta step)."""
    updates, opt = self.tx_actor.update(grads, self.actor_opt, self.actor)
    return self.replace(actor=optax.apply_updates(self.actor, updates), actor_opt=opt,
                        step=self.step + 1)

  def apply_ac_gradients(self, grads) -> "TrainState":
    """One stage-3 Adam step on the actor (its own optimiser state, fresh at the hand-over)."""
    updates, opt = self.tx_ac.update(grads, self.ac_opt, self.actor)
    return self.replace(actor=optax.apply_updates(self.actor, updates), ac_opt=opt)

  def apply_critic_gradients(self, grads, critic_norm) -> "TrainState":
    """One Adam step on the critic, with its updated normalisation statistics."""
    updates, opt = self.tx_critic.update(grads, self.critic_opt, self.critic)
    return self.replace(critic=optax.apply_updates(self.critic, updates), critic_norm=critic_norm,
                        critic_opt=opt)


def optimizers(actor_cfg: ml_collections.ConfigDict, critic_cfg: ml_collections.ConfigDict,
               ac_cfg: ml_collections.ConfigDict) -> dict:
  """Adam for stage 1 (Table 5's 1e-3), the critic (1e-4) and the actor in stage 3 (2e-6)."""
  return {"tx_actor": optax.adam(actor_cfg.learning_rate),
          "tx_critic": optax.adam(critic_cfg.learning_rate),
          "tx_ac": optax.adam(ac_cfg.actor_learning_rate)}


def _fresh_critic(key, critic_cfg, n_items, actor_params, txs) -> dict:
  ckey = jax.random.fold_in(jax.random.fold_in(key, INIT_CRITIC), critic_cfg.seed)
  cparams, norm = critic_lib.init(ckey, critic_cfg, n_items)
  return {"critic": cparams, "critic_norm": norm, "critic_opt": txs["tx_critic"].init(cparams),
          "ac_opt": txs["tx_ac"].init(actor_params)}


def create(key: jax.Array, actor_cfg, critic_cfg, ac_cfg, n_items: int) -> TrainState:
  """A new state: the initial actor (Table 4's initialisers) and a new critic.

  Args:
    key: the run's PRNG key (`PRNGKey(config.seed)`); the actor draws from `fold_in(key, 1)`, the
      critic from `fold_in(fold_in(key, 2), config.critic.seed)`.
    actor_cfg, critic_cfg, ac_cfg: `config.actor`, `config.critic`, `config.ac`.
    n_items: M.
  """
  txs = optimizers(actor_cfg, critic_cfg, ac_cfg)
  actor = actors.init(jax.random.fold_in(key, INIT_ACTOR), actor_cfg, n_items)
  return TrainState(actor=actor, actor_opt=txs["tx_actor"].init(actor),
                    step=jnp.zeros((), jnp.int32),
                    **_fresh_critic(key, critic_cfg, n_items, actor, txs), **txs)


def hand_over(state: TrainState, best_actor, key: jax.Array, critic_cfg,
              n_items: int) -> TrainState:
  """Algorithm 1 after stage 1: the best actor by validation, a new critic, fresh stage-2/3
  optimiser states (the actor's stage-1 optimiser state is kept, unused)."""
  txs = {"tx_actor": state.tx_actor, "tx_critic": state.tx_critic, "tx_ac": state.tx_ac}
  return state.replace(actor=best_actor,
                       **_fresh_critic(key, critic_cfg, n_items, best_actor, txs))


def epoch_key(key: jax.Array, epoch: int) -> jax.Array:
  """The key of global epoch `epoch` (its user order, masks and noise derive from it)."""
  return jax.random.fold_in(jax.random.fold_in(key, EPOCHS), epoch)
