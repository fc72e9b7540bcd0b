"""The item-item actor (issue 14): EASE's scores at initialisation through the evaluation's own
scoring, the zero diagonal through training steps, the frozen B0 of the low-rank shape, the binary
input, and the config checks of a warm start."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ract_jax import actors, evaluate
from ract_jax import config_base as base
from ract_jax.baselines import ease
from ract_jax.data.csr import CSR
from ract_jax.device import batches
from ract_jax.train import validate

M = 12


def _cfg(shape="full", **kw):
  c = base.get_base_config()
  base.apply_variant(c, "item_item", "test")
  c.actor.shape, c.actor.latent_dim = shape, 3
  for k, v in kw.items():
    setattr(c.actor, k, v)
  return c.actor


def _rows(seed=0, n=30):
  rng = np.random.RandomState(seed)
  x = (rng.rand(n, M) < 0.35).astype(np.float32)
  x[:, 0] = 1.0  # No empty row.
  return x


def _entries(x):
  rows, items = np.nonzero(x)
  csr = CSR.from_pairs(rows, items, x.shape[0], M)
  dev = batches.DeviceCSR(jnp.asarray(csr.indptr, jnp.int32), jnp.asarray(csr.indices, jnp.int32))
  return batches.gather_entries(dev, jnp.arange(x.shape[0], dtype=jnp.int32),
                                batches.entry_capacity(csr, x.shape[0]))


def _from_ease(cfg, x, lam=5.0):
  rows, items = np.nonzero(x)
  b = ease.fit(CSR.from_pairs(rows, items, x.shape[0], M), lam)
  params = actors.init(jax.random.PRNGKey(0), cfg, M)
  params["item"]["w"] = jnp.asarray(b)
  return params, b


@pytest.mark.parametrize("shape", ["full", "lowrank"])
def test_forward_at_init_equals_ease_scores(shape):
  x = _rows()
  cfg = _cfg(shape, item_item_scale=1.0)
  params, b = _from_ease(cfg, x)
  score = evaluate.actor_score_fn(cfg)  # The evaluation's scoring (binary input, no dropout).
  got = np.asarray(score(params, _entries(x), jnp.asarray(x)))
  want = np.asarray(ease.scores(b, jnp.asarray(x)))
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert np.abs(want).max() > 0.05  # Not a trivially zero B.
  cfg.item_item_scale = 10.0  # tau scales every logit (a temperature, the ranking is unchanged).
  np.testing.assert_allclose(np.asarray(score(params, _entries(x), jnp.asarray(x))), 10 * want,
                             rtol=1e-5, atol=1e-4)


def test_binary_input_masks_without_rescaling():
  counts = jnp.array([4, 4, 9], jnp.int32)
  seg = jnp.array([0, 0, 2], jnp.int32)
  kept = jnp.array([True, False, True])
  got = actors.input_values(counts, seg, kept, 0.8, train=True, norm="binary")
  np.testing.assert_array_equal(got, [1.0, 0.0, 1.0])
  with pytest.raises(ValueError, match="config.actor.input_norm"):
    actors.input_values(counts, seg, kept, 0.8, train=True, norm="l1")


@pytest.mark.parametrize("shape", ["full", "lowrank"])
def test_diagonal_stays_zero_through_training(shape):
  x = _rows(1)
  cfg = _cfg(shape)
  params, b0 = _from_ease(cfg, x)
  params["item"]["w"] = params["item"]["w"] + 0.0  # A fresh buffer.
  rows, items = np.nonzero(x)
  inp = actors.SparseInput(jnp.asarray(rows, jnp.int32), jnp.asarray(items, jnp.int32),
                           jnp.ones(len(rows), jnp.float32), jnp.arange(x.shape[0]))
  tx = optax.adam(1e-2)
  opt = tx.init(params)

  @jax.jit
  def step(p, o):
    def loss(p):
      logits = actors.apply(p, cfg, inp, None, train=True).logits
      # A loss that would grow the diagonal if it could: each item predicts itself.
      return jnp.mean(actors.per_user_loss(cfg, logits, jnp.asarray(x)))
    g = jax.grad(loss)(p)
    u, o = tx.update(g, o, p)
    return optax.apply_updates(p, u), o

  for _ in range(4):
    params, opt = step(params, opt)
  w = np.asarray(params["item"]["w"])
  eff = np.asarray(actors.FAMILIES["item_item"].weights(params, cfg))
  np.testing.assert_array_equal(np.diag(w), 0.0)
  np.testing.assert_array_equal(np.diag(eff), 0.0)
  off = ~np.eye(M, dtype=bool)
  assert np.abs(eff - np.asarray(b0))[off].max() > 1e-3  # It did train.
  if shape == "lowrank":
    np.testing.assert_array_equal(w, np.asarray(b0))  # B0 frozen: only U V moved.


def test_warm_start_config_checks():
  c = base.get_base_config()
  base.apply_variant(c, "item_item", "test")
  c.schedule.actor_epochs = 0  # Allowed: the actor starts from EASE.
  validate.check_config(c)
  c.actor.init = "random"
  with pytest.raises(ValueError, match="actor_epochs=0"):
    validate.check_config(c)
  c.actor.init = "wmf"
  with pytest.raises(ValueError, match="config.actor.init"):
    validate.check_config(c)
