"""The per-device steps of stages 2 and 3 on the synthetic smoke data: critic pre-training lowers
its MSE, one stage-3 actor step raises the critic's estimate on its batch, and each stage's step
changes only the fields of the TrainState that stage trains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from configs import default
from ract_jax import actors
from ract_jax import critic as critic_lib
from ract_jax.device import parallel
from ract_jax.train import setup, state as state_lib, steps, trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  c = default.get_config("smoke")
  c.data.processed_dir = str(tmp_path_factory.mktemp("processed") / "synthetic")
  c.baselines.names = ()
  c.critic.learning_rate = 3e-3  # The paper's 1e-4 needs more steps than a unit test takes.
  return setup.build(c, str(tmp_path_factory.mktemp("work")))


def _epochs(run, stage, state, epochs):
  program = trainer.epoch_program(run, stage)
  out = []
  for e in epochs:
    state, sums = program(state, run.csr, state_lib.epoch_key(run.key, e))
    out.append(jax.tree.map(np.asarray, sums))
  return state, out


def _changed(a, b) -> set:
  fields = ("actor", "actor_opt", "ac_opt", "critic", "critic_norm", "critic_opt", "step")
  return {f for f in fields
          if any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(getattr(a, f)),
                                                          jax.tree.leaves(getattr(b, f))))}


def test_each_stage_trains_only_its_fields(run):
  before = jax.tree.map(np.asarray, trainer.initial_state(run))
  for stage, want in (("actor", {"actor", "actor_opt", "step"}),
                      ("critic", {"critic", "critic_norm", "critic_opt"}),
                      ("ac", {"actor", "ac_opt", "critic", "critic_norm", "critic_opt"})):
    after, _ = _epochs(run, stage, trainer.initial_state(run), [0])
    assert _changed(before, jax.tree.map(np.asarray, after)) == want, stage


def test_critic_pretraining_lowers_mse(run):
  _, sums = _epochs(run, "critic", trainer.initial_state(run), range(10))
  mses = [s["mse"].sum() / s["users"].sum() for s in sums]
  assert np.mean(mses[-2:]) < 0.7 * mses[0], mses


def test_one_stage3_step_raises_the_critics_estimate_on_its_batch(run):
  cfg = run.config
  state, _ = _epochs(run, "critic", trainer.initial_state(run), range(8))
  ac_cfg = cfg.ac.copy_and_resolve_references()
  ac_cfg.actor_learning_rate = 1e-3  # A visible step; the paper's 2e-6 moves it by ~1e-6.
  state = state_lib.create(run.key, cfg.actor, cfg.critic, ac_cfg, run.shape.n_items).replace(
      actor=state.actor, critic=state.critic, critic_norm=state.critic_norm)
  step = steps.make_ac_step(cfg.actor, cfg.critic, ac_cfg, run.shape, run.steps_per_epoch)
  key = jax.random.PRNGKey(7)
  users = jnp.arange(cfg.batch_size, dtype=jnp.int32)

  def estimate(state, csr, users):
    """Mean critic output on the batch of `key` (same mask and noise), critic fixed."""
    k_mask, k_z = jax.random.split(key)
    batch = steps.build_batch(csr, users, k_mask, run.shape.n_items, run.shape.cap,
                              cfg.actor.keep_prob)
    logits = actors.apply(state.actor, cfg.actor, batch.actor_input(cfg.actor.keep_prob), k_z,
                          train=True).logits
    seen = batch.seen(run.shape.n_items)
    inputs = critic_lib.critic_inputs(logits, seen, batch.x - seen,
                                      lambda lg, x: actors.per_user_loss(cfg.actor, lg, x))
    pred, _ = critic_lib.predict(state.critic, state.critic_norm, inputs, cfg.critic, train=False)
    return jax.lax.psum(jnp.sum(pred * batch.valid), parallel.AXIS) / batch.n_global

  per_device = lambda f, out: jax.jit(parallel.per_device(
      f, run.mesh, in_specs=(P(), P(), P(parallel.AXIS)), out_specs=out))
  new_state = per_device(lambda s, c, u: step(s, c, u, key)[0], P())(state, run.csr, users)
  est = per_device(estimate, P())
  before = float(est(state, run.csr, users))
  after = float(est(new_state, run.csr, users))
  assert after > before, (before, after)


def test_naive_critic_trains_in_stages_2_and_3(tmp_path):
  c = default.get_config("smoke")
  c.data.processed_dir = str(tmp_path / "processed")
  c.baselines.names = ()
  c.critic.kind, c.critic.naive_hidden, c.critic.learning_rate = "naive", 8, 3e-3
  run = setup.build(c, str(tmp_path / "work"))
  state = trainer.initial_state(run)
  assert state.critic["hidden_0"]["w"].shape == (2 * run.shape.n_items, 8)
  state, sums = _epochs(run, "critic", state, range(6))
  mses = [float(np.sum(s["mse"]) / np.sum(s["users"])) for s in sums]
  assert mses[-1] < mses[0], mses
  _, sums = _epochs(run, "ac", state, [6])
  assert np.isfinite(sums[0]["mse"]).all()
