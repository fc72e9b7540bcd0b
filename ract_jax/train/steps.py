"""Per-device training steps of the three RaCT stages (pure functions, run under `shard_map`).

Each step takes the replicated training CSR and this device's slice of the batch's user ids, builds
the batch on device, and returns the new state and summed metrics. Losses are normalised by the
global number of real users in the batch, so `psum` of the per-device gradients is the gradient of
the global mean (and a partial last batch is weighted by its real users only).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ract_jax import actors
from ract_jax import critic as critic_lib
from ract_jax.data import batches
from ract_jax.train.parallel import AXIS


class ActorState(NamedTuple):
  params: dict
  opt_state: optax.OptState
  step: jax.Array  # int32: global stage-1 step (drives the beta schedule).


class CriticState(NamedTuple):
  params: dict
  norm_state: dict  # Batch-norm running statistics (empty for normalize='none').
  opt_state: optax.OptState


class TrainBatch(NamedTuple):
  """What a step builds from the user ids: entries, the mask b, and the dense rows it needs."""

  entries: batches.Entries
  kept: jax.Array  # bool [cap]: b = 1 (observed input) on real entries.
  x: jax.Array  # float32 [B, M]: the full row.
  valid: jax.Array  # float32 [B]: 1 for real users.
  n_global: jax.Array  # float32 scalar: real users in the global batch.

  def actor_input(self, keep_prob: float) -> actors.SparseInput:
    e = self.entries
    values = actors.input_values(e.counts, e.seg, self.kept, keep_prob, train=True)
    return actors.SparseInput(e.seg, e.item, values, e.users)

  def seen_counts(self) -> jax.Array:
    """|H1| per user (kept input items), float32 `[B]`."""
    b = self.valid.shape[0]
    return jax.ops.segment_sum(self.kept.astype(jnp.float32), self.entries.seg, num_segments=b)


def build_batch(csr: batches.DeviceCSR, users: jax.Array, key: jax.Array, n_items: int,
                cap: int, keep_prob: float) -> TrainBatch:
  """The device-side batch for `users` (int32 `[B_local]`, -1 = padding)."""
  entries = batches.gather_entries(csr, users, cap)
  kept = batches.keep_mask(key, entries, keep_prob)
  valid = entries.user_valid.astype(jnp.float32)
  return TrainBatch(entries=entries, kept=kept, x=batches.dense_rows(entries, n_items), valid=valid,
                    n_global=jnp.maximum(jax.lax.psum(jnp.sum(valid), AXIS), 1.0))


def _psum_grads(grads):
  return jax.lax.psum(grads, AXIS)


def make_actor_step(config: ml_collections.ConfigDict, n_items: int, cap: int,
                    steps_per_epoch: int, tx: optax.GradientTransformation, chunk: int) -> Callable:
  """Stage 1: one MLE step on the negative beta-ELBO (eq. 4) plus the configured L2."""
  acfg = config.actor

  def step(state: ActorState, csr, users, key):
    k_mask, k_z = jax.random.split(key)
    batch = build_batch(csr, users, k_mask, n_items, cap, acfg.keep_prob)
    beta = actors.beta_at(state.step, acfg, steps_per_epoch)
    inp = batch.actor_input(acfg.keep_prob)

    def loss_fn(params):
      out = actors.apply(params, acfg, inp, k_z, train=True, chunk=chunk)
      nll = actors.per_user_loss(acfg, out.logits, batch.x)
      loss = jnp.sum((nll + beta * out.kl) * batch.valid) / batch.n_global
      return loss, (jnp.sum(nll * batch.valid), jnp.sum(out.kl * batch.valid))

    grads, (nll_sum, kl_sum) = jax.grad(loss_fn, has_aux=True)(state.params)
    grads = _psum_grads(grads)
    if acfg.l2:
      grads = jax.tree.map(jnp.add, grads,
                           jax.grad(lambda p: actors.l2_penalty(p, acfg))(state.params))
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    sums = jax.lax.psum({"nll": nll_sum, "kl": kl_sum, "users": jnp.sum(batch.valid)}, AXIS)
    sums["beta"] = beta
    return ActorState(params, opt_state, state.step + 1), sums

  return step


def _critic_inputs(config, batch: TrainBatch, k_z, chunk, n_items):
  """The actor forward in training mode as a function of its parameters, and the mask's views.

  Returns `(forward, view)`: `forward(params) -> (loss [B], kl [B], logits [B, M])` (the loss is the
  critic's NLL feature); `view` holds seen / unseen, the dense kept / dropped items (x * b,
  x * (1 - b)), and their counts |H1|, |H0| of eq. 5.
  """
  acfg = config.actor
  seen = batches.dense_rows(batch.entries, n_items, values=batch.kept)
  n_seen = batch.seen_counts()
  inp = batch.actor_input(acfg.keep_prob)

  def forward(params):
    out = actors.apply(params, acfg, inp, k_z, train=True, chunk=chunk)
    return actors.per_user_loss(acfg, out.logits, batch.x), out.kl, out.logits

  view = {"seen": seen, "unseen": batch.x - seen, "n_seen": n_seen,
          "n_unseen": batch.entries.counts.astype(jnp.float32) - n_seen}
  return forward, view


def critic_predict(cparams, norm_state, ccfg, nll, logits, view, valid, train: bool):
  """The critic's estimate of each user's metric, `(pred [B], new_norm_state)`.

  'features' (default): eq. 5's [|H1|, |H0|, NLL] through the feature critic. 'naive': the
  paper's section 3 critic on `[pi_p, x_p]` (the actor's probabilities outside the kept items and
  the dropped items), which the authors report failed; kept small and optional.
  """
  if ccfg.kind == "naive":
    pi_p = jax.nn.softmax(logits, axis=-1) * (1.0 - view["seen"])
    return critic_lib.naive_apply(cparams, pi_p, view["unseen"]), norm_state
  feats = critic_lib.critic_features(nll, view["n_seen"], view["n_unseen"], ccfg)
  return critic_lib.apply(cparams, norm_state, feats, ccfg, train=train, mask=valid,
                          axis_name=AXIS)


def _critic_update(cstate: CriticState, nll, logits, view, target, batch: TrainBatch, config,
                   tx_critic):
  ccfg = config.critic
  nll, logits = jax.lax.stop_gradient(nll), jax.lax.stop_gradient(logits)

  def loss_fn(cparams):
    pred, norm_state = critic_predict(cparams, cstate.norm_state, ccfg, nll, logits, view,
                                      batch.valid, train=True)
    sq = jnp.sum(((pred - target) ** 2) * batch.valid) / batch.n_global
    return sq, (pred, norm_state)

  grads, (pred, norm_state) = jax.grad(loss_fn, has_aux=True)(cstate.params)
  grads = _psum_grads(grads)
  grads = jax.tree.map(jnp.add, grads, jax.grad(
      lambda p: critic_lib.l2_penalty(p, ccfg, config.batch_size))(cstate.params))
  updates, opt_state = tx_critic.update(grads, cstate.opt_state, cstate.params)
  return CriticState(optax.apply_updates(cstate.params, updates), norm_state, opt_state), pred


def _critic_sums(pred, target, nll, batch: TrainBatch):
  v = batch.valid
  return jax.lax.psum({
      "mse": jnp.sum((pred - target) ** 2 * v), "users": jnp.sum(v),
      "pred": jnp.sum(pred * v), "pred_sq": jnp.sum(pred**2 * v),
      "target": jnp.sum(target * v), "target_sq": jnp.sum(target**2 * v),
      "pred_target": jnp.sum(pred * target * v), "nll": jnp.sum(nll * v),
  }, AXIS)


def make_critic_step(config: ml_collections.ConfigDict, n_items: int, cap: int,
                     tx_critic: optax.GradientTransformation, chunk: int) -> Callable:
  """Stage 2: one critic MSE step (eq. 6) against the oracle; the actor is frozen but still samples
  z and drops inputs as in training (Pitfall 8)."""

  def step(carry, csr, users, key):
    actor_params, cstate = carry
    k_mask, k_z = jax.random.split(key)
    batch = build_batch(csr, users, k_mask, n_items, cap, config.actor.keep_prob)
    forward, view = _critic_inputs(config, batch, k_z, chunk, n_items)
    nll, _, logits = forward(actor_params)
    target = critic_lib.oracle_target(logits, view["seen"], view["unseen"], config.critic)
    cstate, pred = _critic_update(cstate, nll, logits, view, target, batch, config, tx_critic)
    return (actor_params, cstate), _critic_sums(pred, target, nll, batch)

  return step


def make_ac_step(config: ml_collections.ConfigDict, n_items: int, cap: int, steps_per_epoch: int,
                 tx_actor: optax.GradientTransformation, tx_critic: optax.GradientTransformation,
                 chunk: int) -> Callable:
  """Stage 3: per batch one actor step on -mean(critic) (eq. 7) and one critic step (eq. 6), both
  from the same forward pass (same b and epsilon), both from the pre-update parameters."""
  acfg, ccfg = config.actor, config.critic

  def step(carry, csr, users, key):
    astate, cstate = carry
    k_mask, k_z = jax.random.split(key)
    batch = build_batch(csr, users, k_mask, n_items, cap, acfg.keep_prob)
    forward, view = _critic_inputs(config, batch, k_z, chunk, n_items)
    (nll, kl, logits), vjp_fn = jax.vjp(forward, astate.params)
    target = critic_lib.oracle_target(logits, view["seen"], view["unseen"], ccfg)

    # d(-mean critic)/d(nll, logits): the counts are constants; for the feature critic the gradient
    # flows only through the NLL. With `critic_mode='eval'` the critic normalises with its running
    # statistics, so each user's gradient is the critic's own slope in that user's NLL; 'train'
    # normalises with the batch's statistics, which makes the objective blind to a shift of every
    # user's NLL (see configs/base.py).
    def actor_objective(nll_, logits_):
      pred, _ = critic_predict(cstate.params, cstate.norm_state, ccfg, nll_, logits_, view,
                               batch.valid, train=config.ac.critic_mode == "train")
      return -jnp.sum(pred * batch.valid) / batch.n_global

    g_nll, g_logits = jax.grad(actor_objective, argnums=(0, 1))(nll, logits)
    g_kl = jnp.zeros_like(kl)
    if config.ac.elbo_weight:  # Optional ELBO term (the authors' ac_reg_loss_scaler is 0).
      w = config.ac.elbo_weight * batch.valid / batch.n_global
      g_nll = g_nll + w
      g_kl = w * actors.beta_at(astate.step, acfg, steps_per_epoch)
    (g_actor,) = vjp_fn((g_nll, g_kl, g_logits))
    g_actor = _psum_grads(g_actor)
    updates, opt_state = tx_actor.update(g_actor, astate.opt_state, astate.params)
    new_astate = ActorState(optax.apply_updates(astate.params, updates), opt_state, astate.step)

    cstate, pred = _critic_update(cstate, nll, logits, view, target, batch, config, tx_critic)
    return (new_astate, cstate), _critic_sums(pred, target, nll, batch)

  return step
