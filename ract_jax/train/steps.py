"""Per-device training steps of the three RaCT stages, each `TrainState -> TrainState`.

Each step takes the replicated training CSR and this device's slice of the batch's user ids, builds
the batch on device, and returns the new state and summed metrics. Every loss is this device's share
of the global one (normalised by the global number of real users), so `psum` of the per-device
gradients is the gradient of the global mean and a partial last batch counts its real users only.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax import actors
from ract_jax import critic as critic_lib
from ract_jax.device import batches
from ract_jax.device.parallel import AXIS
from ract_jax.train.state import TrainState


@dataclasses.dataclass(frozen=True)
class BatchShape:
  """Static sizes of a training batch: items M, entry capacity of a local batch, users per step,
  and the form of the actor's first layer for this data (`actors.first_layer_form`)."""

  n_items: int
  cap: int
  batch_size: int  # Global users per step (the critic's L2 term divides by it).
  first_layer: str = "sparse"


class TrainBatch(NamedTuple):
  """What a step builds from the user ids: entries, the mask b, and the dense rows it needs."""

  entries: batches.Entries
  kept: jax.Array  # bool [cap]: b = 1 (observed input) on real entries.
  x: jax.Array  # float32 [B, M]: the full row.
  valid: jax.Array  # float32 [B]: 1 for real users.
  n_global: jax.Array  # float32 scalar: real users in the global batch.

  def actor_input(self, keep_prob: float, norm: str = "l2") -> actors.SparseInput:
    e = self.entries
    values = actors.input_values(e.counts, e.seg, self.kept, keep_prob, train=True, norm=norm)
    return actors.SparseInput(e.seg, e.item, values, e.users)

  def seen(self, n_items: int) -> jax.Array:
    """float32 `[B, M]`: the kept input items x * b."""
    return batches.dense_rows(self.entries, n_items, values=self.kept)


def build_batch(csr: batches.DeviceCSR, users: jax.Array, key: jax.Array, n_items: int,
                cap: int, keep_prob: float) -> TrainBatch:
  """The device-side batch for `users` (int32 `[B_local]`, -1 = padding)."""
  entries = batches.gather_entries(csr, users, cap)
  kept = batches.keep_mask(key, entries, keep_prob)
  valid = entries.user_valid.astype(jnp.float32)
  return TrainBatch(entries=entries, kept=kept, x=batches.dense_rows(entries, n_items), valid=valid,
                    n_global=jnp.maximum(jax.lax.psum(jnp.sum(valid), AXIS), 1.0))


def _share(per_user, batch: TrainBatch):
  return jnp.sum(per_user * batch.valid) / batch.n_global


def make_actor_step(actor_cfg: ml_collections.ConfigDict, shape: BatchShape,
                    steps_per_epoch: int) -> Callable:
  """Stage 1: one MLE step on the negative beta-ELBO (eq. 4) plus the configured L2."""

  def step(state: TrainState, csr, users, key):
    k_mask, k_z = jax.random.split(key)
    batch = build_batch(csr, users, k_mask, shape.n_items, shape.cap, actor_cfg.keep_prob)
    beta = actors.beta_at(state.step, actor_cfg, steps_per_epoch)
    inp = batch.actor_input(actor_cfg.keep_prob, actor_cfg.input_norm)

    def loss_fn(params):
      out = actors.apply(params, actor_cfg, inp, k_z, train=True, first_layer=shape.first_layer)
      nll = actors.per_user_loss(actor_cfg, out.logits, batch.x)
      return (_share(nll + beta * out.kl, batch),
              (jnp.sum(nll * batch.valid), jnp.sum(out.kl * batch.valid)))

    grads, (nll, kl) = jax.grad(loss_fn, has_aux=True)(state.actor)
    grads = jax.lax.psum(grads, AXIS)
    if actor_cfg.l2:
      grads = jax.tree.map(jnp.add, grads,
                           jax.grad(lambda p: actors.l2_penalty(p, actor_cfg))(state.actor))
    sums = jax.lax.psum({"nll": nll, "kl": kl, "users": jnp.sum(batch.valid)}, AXIS)
    return state.apply_actor_gradients(grads), dict(sums, beta=beta)

  return step


def _forward_and_view(actor_cfg, shape: BatchShape, batch: TrainBatch, k_z):
  """The actor's training forward pass `params -> (logits, kl, loss)` (the loss L_E on the full
  row, the critic's first feature) and its batch's seen / unseen rows (x * b and x * (1 - b)),
  from which `critic.critic_inputs` builds the critic's inputs."""
  inp = batch.actor_input(actor_cfg.keep_prob, actor_cfg.input_norm)
  seen = batch.seen(shape.n_items)

  def forward(params):
    out = actors.apply(params, actor_cfg, inp, k_z, train=True, first_layer=shape.first_layer)
    return out.logits, out.kl, actors.per_user_loss(actor_cfg, out.logits, batch.x)

  return forward, seen, batch.x - seen


def _critic_update(state: TrainState, inputs, target, batch: TrainBatch, critic_cfg,
                   batch_size: int):
  """One critic step on eq. 6 (from pre-update parameters); returns (state, prediction)."""
  grads, (pred, norm) = jax.grad(critic_lib.loss, has_aux=True)(
      state.critic, state.critic_norm, inputs, target, critic_cfg, valid=batch.valid,
      n_global=batch.n_global, batch_size=batch_size, axis_name=AXIS)
  return state.apply_critic_gradients(jax.lax.psum(grads, AXIS), norm), pred


def _critic_sums(pred, target, loss, batch: TrainBatch):
  """Per-step sums behind the epoch's MSE and Pearson r (see `records.epoch_summary`)."""
  v = batch.valid
  return jax.lax.psum({
      "mse": jnp.sum((pred - target) ** 2 * v), "users": jnp.sum(v),
      "pred": jnp.sum(pred * v), "pred_sq": jnp.sum(pred**2 * v),
      "target": jnp.sum(target * v), "target_sq": jnp.sum(target**2 * v),
      "pred_target": jnp.sum(pred * target * v), "nll": jnp.sum(loss * v),
  }, AXIS)


def make_critic_step(actor_cfg: ml_collections.ConfigDict, critic_cfg: ml_collections.ConfigDict,
                     shape: BatchShape) -> Callable:
  """Stage 2: one critic MSE step (eq. 6) against the oracle; the actor is frozen but still samples
  z and drops inputs as in training."""

  def step(state: TrainState, csr, users, key):
    k_mask, k_z = jax.random.split(key)
    batch = build_batch(csr, users, k_mask, shape.n_items, shape.cap, actor_cfg.keep_prob)
    forward, seen, unseen = _forward_and_view(actor_cfg, shape, batch, k_z)
    logits, _, loss = forward(state.actor)
    inputs = critic_lib.critic_inputs(logits, seen, unseen, loss)
    target = critic_lib.oracle_target(inputs, critic_cfg)
    state, pred = _critic_update(state, inputs, target, batch, critic_cfg, shape.batch_size)
    return state, _critic_sums(pred, target, inputs.loss, batch)

  return step


def finetune_loss_config(actor_cfg: ml_collections.ConfigDict,
                         objective: str) -> ml_collections.ConfigDict:
  """`config.actor` with its loss replaced by the fine-tuning loss `objective` (its WARP form, its
  positive weight, ... stay the actor's keys)."""
  cfg = ml_collections.ConfigDict(actor_cfg.to_dict())
  cfg.loss = objective
  return cfg


def make_finetune_step(actor_cfg: ml_collections.ConfigDict, ac_cfg: ml_collections.ConfigDict,
                       shape: BatchShape) -> Callable:
  """Stage 3 of Table 1's L2R rows: one actor step on the mean L2R loss `ac_cfg.objective` of the
  training batch (the authors' phase 4: no critic, no KL, no L2; the input mask and the posterior
  sample as in training), with stage 3's optimiser. The critic is not touched."""
  loss_cfg = finetune_loss_config(actor_cfg, ac_cfg.objective)

  def step(state: TrainState, csr, users, key):
    k_mask, k_z = jax.random.split(key)
    batch = build_batch(csr, users, k_mask, shape.n_items, shape.cap, actor_cfg.keep_prob)
    inp = batch.actor_input(actor_cfg.keep_prob)

    def loss_fn(params):
      out = actors.apply(params, actor_cfg, inp, k_z, train=True)
      loss = actors.per_user_loss(loss_cfg, out.logits, batch.x)
      return _share(loss, batch), jnp.sum(loss * batch.valid)

    grads, total = jax.grad(loss_fn, has_aux=True)(state.actor)
    state = state.apply_ac_gradients(jax.lax.psum(grads, AXIS))
    return state, jax.lax.psum({"loss": total, "users": jnp.sum(batch.valid)}, AXIS)

  return step


def make_ac_step(actor_cfg: ml_collections.ConfigDict, critic_cfg: ml_collections.ConfigDict,
                 ac_cfg: ml_collections.ConfigDict, shape: BatchShape,
                 steps_per_epoch: int) -> Callable:
  """Stage 3: per batch one actor step on -mean(critic) (eq. 7) and one critic step (eq. 6), both
  from the same forward pass (same b and epsilon), both from the pre-update parameters. With an
  L2R `ac_cfg.objective` instead of 'critic': `make_finetune_step`."""
  if ac_cfg.objective != "critic":
    return make_finetune_step(actor_cfg, ac_cfg, shape)

  def step(state: TrainState, csr, users, key):
    k_mask, k_z = jax.random.split(key)
    batch = build_batch(csr, users, k_mask, shape.n_items, shape.cap, actor_cfg.keep_prob)
    forward, seen, unseen = _forward_and_view(actor_cfg, shape, batch, k_z)
    (logits, kl, loss), vjp_fn = jax.vjp(forward, state.actor)
    inputs = critic_lib.critic_inputs(logits, seen, unseen, loss)
    target = critic_lib.oracle_target(inputs, critic_cfg)

    # eq. 7: the critic's estimate as a function of the actor's outputs (its logits and its loss,
    # the critic's first feature), pulled back through the actor. With critic_mode='eval' the
    # critic normalises with its running statistics, so each user's gradient is the critic's own
    # slope at that user; 'train' uses the batch's statistics, which hide any shift of every
    # user's loss together (see config_base).
    def objective(logits_, kl_, loss_):
      inputs_ = critic_lib.critic_inputs(logits_, seen, unseen, loss_)
      pred, _ = critic_lib.predict(state.critic, state.critic_norm, inputs_, critic_cfg,
                                   train=ac_cfg.critic_mode == "train", mask=batch.valid,
                                   axis_name=AXIS)
      value = -_share(pred, batch)
      if ac_cfg.elbo_weight:  # Optional ELBO term (0 in the paper).
        beta = actors.beta_at(state.step, actor_cfg, steps_per_epoch)
        value += ac_cfg.elbo_weight * _share(loss_ + beta * kl_, batch)
      return value

    (g_actor,) = vjp_fn(jax.grad(objective, argnums=(0, 1, 2))(logits, kl, loss))
    new_state = state.apply_ac_gradients(jax.lax.psum(g_actor, AXIS))
    new_state, pred = _critic_update(new_state, inputs, target, batch, critic_cfg,
                                     shape.batch_size)
    return new_state, _critic_sums(pred, target, inputs.loss, batch)

  return step
