"""Tests of ract_jax.critic: the inputs and features (eq. 5), init, normalisation modes, the loss
(eq. 6 + L2), training on a synthetic problem, gradients through batch norm, the oracle, the naive
critic, and shard_map parity of the loss's per-device shares."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from ract_jax import critic, metrics
from ract_jax.critic import network

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


HIDDEN = (32, 32, 8)  # One small shape set for every test: each new shape costs a compile.


def make_cfg(**overrides) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(dict(kind="features", naive_hidden=16, hidden_dims=HIDDEN,
                                     learning_rate=1e-4, l2=1e-4, normalize="batchnorm",
                                     bn_debias=True, metric="ndcg", k=5, use_seen=True,
                                     use_unseen=True))
  c.update(overrides)
  return c


def inputs_of(nll, seen, unseen):
  """CriticInputs from per-user values only (what the feature critic reads)."""
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  return critic.CriticInputs(loss=f32(nll), n_seen=f32(seen), n_unseen=f32(unseen), logits=None,
                             seen=None, unseen=None)


def inputs_from_matrix(x):
  """CriticInputs whose feature matrix (all three features) is `x` [B, 3] = [|H1|, |H0|, L]."""
  x = jnp.asarray(x, jnp.float32)
  return inputs_of(x[:, 2], x[:, 0], x[:, 1])


def japply(cfg, train):
  """Jitted `critic.predict` on a feature matrix (one compile instead of one per eager op)."""
  return jax.jit(lambda p, s, f, m=None: critic.predict(p, s, inputs_from_matrix(f), cfg,
                                                        train=train, mask=m))


def jloss(cfg, batch_size):
  """Jitted single-device `critic.loss` on a feature matrix (n_global = valid rows)."""
  def fn(p, s, f, y, m):
    return critic.loss(p, s, inputs_from_matrix(f), y, cfg, valid=m, n_global=jnp.sum(m),
                       batch_size=batch_size)
  return jax.jit(fn)


def np_mlp(params, h):
  h = np.asarray(h, np.float64)
  n_hidden = len([k for k in params if k.startswith("hidden_")])
  for i in range(n_hidden):
    h = np.maximum(h @ np.asarray(params[f"hidden_{i}"]["w"], np.float64)
                   + np.asarray(params[f"hidden_{i}"]["b"], np.float64), 0.0)
  out = h @ np.asarray(params["output"]["w"], np.float64) + np.asarray(params["output"]["b"])
  return 1.0 / (1.0 + np.exp(-out[:, 0]))


def random_features(rng, b):
  seen = rng.integers(1, 40, size=b).astype(np.float32)
  unseen = rng.integers(0, 40, size=b).astype(np.float32)
  nll = (rng.uniform(50, 500, size=b)).astype(np.float32)
  return nll, seen, unseen


# ---------------------------------------------------------------------------------------------
# Inputs, features and init.
# ---------------------------------------------------------------------------------------------


def test_critic_inputs_from_logits_and_rows():
  seen = np.array([[1, 0, 1, 0], [0, 0, 0, 1]], np.float32)
  unseen = np.array([[0, 1, 0, 0], [1, 1, 0, 0]], np.float32)
  logits = jnp.asarray(np.arange(8, dtype=np.float32).reshape(2, 4))
  seen_rows = []
  inputs = critic.critic_inputs(logits, seen, unseen,
                                lambda lg, x: seen_rows.append(x) or jnp.sum(lg * x, axis=-1))
  np.testing.assert_array_equal(seen_rows[0], seen + unseen)  # The loss reads the full row.
  np.testing.assert_array_equal(inputs.loss, [0 + 1 + 2, 4 + 5 + 7])
  np.testing.assert_array_equal(inputs.n_seen, [2, 1])
  np.testing.assert_array_equal(inputs.n_unseen, [1, 2])


def test_features_order_and_ablation():
  inputs = inputs_of([10.0, 20.0], [1, 2], [3, 4])
  f = critic.feature_matrix(inputs, make_cfg())
  assert f.dtype == jnp.float32 and f.shape == (2, 3)
  np.testing.assert_array_equal(f, [[1, 3, 10], [2, 4, 20]])  # [|H1|, |H0|, L_E]
  assert critic.n_features(make_cfg()) == 3
  assert critic.feature_names(make_cfg()) == ("n_seen", "n_unseen", "loss")
  for overrides, want in [({"use_seen": False}, [[3, 10], [4, 20]]),
                          ({"use_unseen": False}, [[1, 10], [2, 20]]),
                          ({"use_seen": False, "use_unseen": False}, [[10], [20]])]:
    c = make_cfg(**overrides)
    np.testing.assert_array_equal(critic.feature_matrix(inputs, c), want)
    assert critic.n_features(c) == len(want[0])


def test_init_shapes_glorot_and_state():
  cfg = make_cfg()
  params, state = critic.init(jax.random.PRNGKey(0), cfg, n_items=50)
  dims = [3, *HIDDEN, 1]
  names = ["hidden_0", "hidden_1", "hidden_2", "output"]
  assert sorted(params) == sorted(names)
  for name, d_in, d_out in zip(names, dims[:-1], dims[1:]):
    w, b = np.asarray(params[name]["w"]), np.asarray(params[name]["b"])
    assert w.shape == (d_in, d_out) and b.shape == (d_out,)
    assert w.dtype == np.float32
    limit = math.sqrt(6.0 / (d_in + d_out))
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.8 * limit  # Uniform over the full range, not a narrower init.
    np.testing.assert_array_equal(b, 0.0)
  w = np.asarray(params["hidden_1"]["w"])  # 1,024 samples of U(-l, l): std = l / sqrt(3).
  assert abs(w.std() / (math.sqrt(6.0 / 64) / math.sqrt(3)) - 1) < 0.1
  assert abs(w.mean()) < 0.03
  np.testing.assert_array_equal(state["mean"], np.zeros(3))
  np.testing.assert_array_equal(state["var"], np.ones(3))
  assert int(state["steps"]) == 0
  _, state_none = critic.init(jax.random.PRNGKey(0), make_cfg(normalize="none"), 50)
  assert state_none == {}
  with pytest.raises(ValueError, match="config.critic.kind='nope'"):
    critic.init(jax.random.PRNGKey(0), make_cfg(kind="nope"), 50)
  with pytest.raises(ValueError, match="config.critic.normalize='bn'"):
    critic.init(jax.random.PRNGKey(0), make_cfg(normalize="bn"), 50)
# ---------------------------------------------------------------------------------------------
# Normalisation modes.
# ---------------------------------------------------------------------------------------------


def test_none_is_mlp_of_x_over_sqrt_1001():
  cfg = make_cfg(normalize="none")
  params, state = critic.init(jax.random.PRNGKey(1), cfg, 50)
  x = np.stack(random_features(np.random.default_rng(0), 6)[::-1], axis=-1)  # any features
  x = x / 100.0  # keep the sigmoid out of saturation so the comparison is informative
  expected = np_mlp(params, x / np.sqrt(1.001))
  for train in (True, False):
    pred, new_state = japply(cfg, train)(params, state, jnp.asarray(x))
    np.testing.assert_allclose(pred, expected, rtol=1e-5, atol=1e-6)
    assert new_state == {}
  # An untrained batch-norm critic evaluates exactly like the authors' frozen one.
  cfg_bn = make_cfg()
  _, bn_state = critic.init(jax.random.PRNGKey(1), cfg_bn, 50)
  pred_bn, _ = japply(cfg_bn, False)(params, bn_state, jnp.asarray(x))
  np.testing.assert_allclose(pred_bn, expected, rtol=1e-5, atol=1e-6)


def test_batchnorm_train_uses_batch_stats_and_updates_running_stats():
  cfg = make_cfg()
  params, state = critic.init(jax.random.PRNGKey(2), cfg, 50)
  rng = np.random.default_rng(1)
  x = np.stack(random_features(rng, 10), axis=-1)[:, [1, 2, 0]]
  mu, var = x.astype(np.float64).mean(0), x.astype(np.float64).var(0)
  train_fn, eval_fn = japply(cfg, True), japply(cfg, False)
  pred, st1 = train_fn(params, state, jnp.asarray(x))
  np.testing.assert_allclose(pred, np_mlp(params, (x - mu) / np.sqrt(var + 1e-3)), rtol=1e-4,
                             atol=1e-6)
  # TF moving averages: momentum 0.99 from mean 0 / var 1.
  np.testing.assert_allclose(st1["mean"], 0.01 * mu, rtol=1e-5)
  np.testing.assert_allclose(st1["var"], 0.99 + 0.01 * var, rtol=1e-5)
  assert int(st1["steps"]) == 1
  # Bias-corrected running statistics after one step are the batch statistics.
  m_hat, v_hat = network.running_stats(st1, cfg)
  np.testing.assert_allclose(m_hat, mu, rtol=1e-4)
  np.testing.assert_allclose(v_hat, var, rtol=1e-3)
  # Eval mode uses them (so right after one step it reproduces the train-mode output) ...
  pred_eval, st_eval = eval_fn(params, st1, jnp.asarray(x))
  np.testing.assert_allclose(pred_eval, pred, rtol=1e-3, atol=1e-5)
  jax.tree.map(np.testing.assert_array_equal, st_eval, st1)
  # ... and on another batch differs from the train mode (which uses that batch's statistics).
  x2 = x * 3.0 + 7.0
  p_train2, st2 = train_fn(params, st1, jnp.asarray(x2))
  p_eval2, _ = eval_fn(params, st1, jnp.asarray(x2))
  assert np.max(np.abs(np.asarray(p_train2) - np.asarray(p_eval2))) > 1e-3
  # Second step: exact exponentially weighted average of the two batches.
  mu2, var2 = x2.astype(np.float64).mean(0), x2.astype(np.float64).var(0)
  m_hat2, v_hat2 = network.running_stats(st2, cfg)
  np.testing.assert_allclose(m_hat2, (0.99 * 0.01 * mu + 0.01 * mu2) / (1 - 0.99**2), rtol=1e-4)
  np.testing.assert_allclose(v_hat2, (0.99 * 0.01 * var + 0.01 * var2) / (1 - 0.99**2), rtol=1e-3)
  # bn_debias=False: TF's raw moving averages at evaluation.
  raw = make_cfg(bn_debias=False)
  p_raw, _ = japply(raw, False)(params, st1, jnp.asarray(x))
  np.testing.assert_allclose(
      p_raw, np_mlp(params, (x - 0.01 * mu) / np.sqrt(0.99 + 0.01 * var + 1e-3)), rtol=1e-4,
      atol=1e-6)


def test_batchnorm_masked_rows_do_not_matter():
  cfg = make_cfg()
  params, state = critic.init(jax.random.PRNGKey(3), cfg, 50)
  rng = np.random.default_rng(2)
  x = np.stack(random_features(rng, 7), axis=-1)
  mask = jnp.asarray(np.array([1] * 7 + [0] * 3, np.float32))
  # Two different paddings (one with NaN/inf) of the same 7 valid rows: same shape, one compile.
  pad_a = jnp.asarray(np.concatenate([x, np.array([[1e6, -3.0, np.nan], [0, 0, np.inf],
                                                   [5, 5, 5]], np.float32)]))
  pad_b = jnp.asarray(np.concatenate([x, np.full((3, 3), 17.0, np.float32)]))
  train_fn = japply(cfg, True)
  p_a, st_a = train_fn(params, state, pad_a, mask)
  p_b, st_b = train_fn(params, state, pad_b, mask)
  # Statistics and predictions are those of the 7 valid rows alone.
  mu, var = x.astype(np.float64).mean(0), x.astype(np.float64).var(0)
  np.testing.assert_allclose(p_a[:7], np_mlp(params, (x - mu) / np.sqrt(var + 1e-3)), rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_array_equal(p_a[:7], p_b[:7])
  np.testing.assert_allclose(st_a["mean"], 0.01 * mu, rtol=1e-5)
  np.testing.assert_allclose(st_a["var"], 0.99 + 0.01 * var, rtol=1e-5)
  jax.tree.map(np.testing.assert_array_equal, st_a, st_b)
  # Loss and gradients are those of the valid rows only, and finite despite NaN/inf padding.
  target = rng.uniform(0, 1, size=10).astype(np.float32)
  vg = jax.jit(jax.value_and_grad(lambda p, f, y, m: critic.loss(
      p, state, inputs_from_matrix(f), y, cfg, valid=m, n_global=jnp.sum(m), batch_size=10),
      has_aux=True))
  (l_a, (pred_a, _)), g_a = vg(params, pad_a, jnp.asarray(target), mask)
  target_b = target.copy()
  target_b[7:] = 0.5  # padded targets do not matter either
  (l_b, _), g_b = vg(params, pad_b, jnp.asarray(target_b), mask)
  pred = np_mlp(params, (x - mu) / np.sqrt(var + 1e-3))
  np.testing.assert_allclose(pred_a[:7], pred, rtol=1e-4, atol=1e-6)
  np.testing.assert_array_equal(l_a, l_b)
  assert np.isfinite(float(l_a))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9), g_a, g_b)
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(g_a))
  # An all-padded batch leaves the running statistics unchanged.
  _, st_none = train_fn(params, state, pad_a, jnp.zeros(10))
  jax.tree.map(np.testing.assert_array_equal, st_none, state)


# ---------------------------------------------------------------------------------------------
# Loss.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", ["batchnorm", "none"])
def test_loss_equals_hand_computation(normalize):
  cfg = make_cfg(normalize=normalize, l2=0.5)  # a large l2 so that term is visible
  params, state = critic.init(jax.random.PRNGKey(4), cfg, 50)
  rng = np.random.default_rng(3)
  x = np.stack(random_features(rng, 9), axis=-1) / 50.0
  target = rng.uniform(0, 1, size=9).astype(np.float32)
  mask = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1], np.float32)
  total, (pred, new_state) = jloss(cfg, 20)(params, state, jnp.asarray(x), jnp.asarray(target),
                                            jnp.asarray(mask))
  v = mask > 0
  if normalize == "none":
    h = x / np.sqrt(1.001)
  else:
    xv = x[v].astype(np.float64)
    h = (x - xv.mean(0)) / np.sqrt(xv.var(0) + 1e-3)
  want = np_mlp(params, h)[v]
  mse = np.mean((want - target[v])**2)
  sq = sum(np.sum(np.asarray(p, np.float64)**2) for p in jax.tree_util.tree_leaves(params))
  np.testing.assert_allclose(np.asarray(pred)[v], want, rtol=1e-4)
  np.testing.assert_allclose(float(total), mse + 0.5 * sq / 20, rtol=1e-4)
  np.testing.assert_allclose(float(critic.l2_penalty(params, cfg, 20)), 0.5 * sq / 20, rtol=1e-5)
  if normalize == "none":
    assert new_state == {}
  else:
    assert int(new_state["steps"]) == 1


# ---------------------------------------------------------------------------------------------
# Learning and gradients.
# ---------------------------------------------------------------------------------------------


def synthetic_problem(n, seed):
  rng = np.random.default_rng(seed)
  nll, seen, unseen = random_features(rng, n)
  # A smooth "ranking score": better with more dropped items, worse with a larger NLL per item.
  z = 2.0 * np.log1p(unseen) / np.log(41.0) - 1.5 * (nll / (seen + unseen + 1.0)) / 20.0
  target = (0.6 / (1.0 + np.exp(-2.0 * z)) + 0.1).astype(np.float32)
  return nll, seen, unseen, target


def test_adam_training_fits_a_smooth_target():
  cfg = make_cfg()
  nll, seen, unseen, target = synthetic_problem(512, 5)
  inputs = inputs_of(nll, seen, unseen)
  target = jnp.asarray(target)
  params, state = critic.init(jax.random.PRNGKey(6), cfg, 50)
  tx = optax.adam(1e-2)
  opt_state = tx.init(params)

  def step(carry, idx):
    params, state, opt_state = carry
    batch = jax.tree.map(lambda a: a[idx], inputs)
    y, valid = target[idx], jnp.ones(idx.shape, jnp.float32)
    (_, (pred, state)), g = jax.value_and_grad(critic.loss, has_aux=True)(
        params, state, batch, y, cfg, valid=valid, n_global=jnp.sum(valid), batch_size=128)
    updates, opt_state = tx.update(g, opt_state, params)
    return (optax.apply_updates(params, updates), state, opt_state), jnp.mean((pred - y) ** 2)

  perm_rng = np.random.default_rng(7)
  batches = jnp.asarray(np.concatenate([perm_rng.permutation(512) for _ in range(75)])
                        .reshape(300, 128))

  @jax.jit
  def evaluate_(params, state):
    pred, _ = critic.predict(params, state, inputs, cfg, train=False)
    return jnp.mean((pred - target)**2), metrics.pearson_r(pred, target)

  def evaluate(params, state):
    return tuple(float(v) for v in evaluate_(params, state))

  mse0, r0 = evaluate(params, state)
  (params, state, _), mses = jax.jit(lambda c, b: jax.lax.scan(step, c, b))(
      (params, state, opt_state), batches)
  mse1, r1 = evaluate(params, state)
  assert mse1 < 0.1 * mse0, (mse0, mse1)
  assert float(mses[-20:].mean()) < 0.2 * float(mses[:5].mean())
  assert r1 > 0.95 and r1 > r0, (r0, r1)


def test_gradient_wrt_loss_feature_flows_through_batchnorm():
  cfg = make_cfg()
  params, state = critic.init(jax.random.PRNGKey(8), cfg, 50)
  nll, seen, unseen = random_features(np.random.default_rng(6), 12)

  def mean_pred(nll_, stop_stats=False):
    inputs = inputs_of(nll_, seen, unseen)
    if stop_stats:  # Reference: batch statistics treated as constants.
      f = critic.feature_matrix(inputs, cfg)
      mu, var, _ = jax.lax.stop_gradient(network.masked_moments(f))
      return jnp.mean(network.mlp(params, (f - mu) * jax.lax.rsqrt(var + network.BN_EPSILON)))
    return jnp.mean(critic.predict(params, state, inputs, cfg, train=True)[0])

  g = jax.jit(jax.grad(mean_pred))(jnp.asarray(nll))
  g_const = jax.jit(jax.grad(lambda v: mean_pred(v, True)))(jnp.asarray(nll))
  assert np.all(np.isfinite(g)) and np.abs(np.asarray(g)).max() > 1e-6
  assert np.abs(np.asarray(g) - np.asarray(g_const)).max() > 1e-3 * np.abs(np.asarray(g)).max()
  # Central finite difference on one user's loss (statistics move with it).
  i, eps = 3, 2.0
  e = np.zeros(12, np.float32)
  e[i] = eps
  f = jax.jit(mean_pred)
  fd = (float(f(jnp.asarray(nll + e))) - float(f(jnp.asarray(nll - e)))) / (2 * eps)
  np.testing.assert_allclose(float(g[i]), fd, rtol=0.05, atol=1e-7)
  # Eval mode also passes a gradient (through the running statistics' affine map only).
  g_eval = jax.jit(jax.grad(lambda v: jnp.mean(critic.predict(
      params, state, inputs_of(v, seen, unseen), cfg, train=False)[0])))(jnp.asarray(nll / 100.0))
  assert np.abs(np.asarray(g_eval)).max() > 0


# ---------------------------------------------------------------------------------------------
# Oracle.
# ---------------------------------------------------------------------------------------------


def np_ndcg(logits, seen, unseen, k):
  out = []
  for lg, s, u in zip(logits, seen, unseen):
    sc = np.where(s > 0, -np.inf, lg)
    top = np.argsort(-sc, kind="stable")[:k]
    dcg = sum(u[j] / np.log2(r + 2) for r, j in enumerate(top))
    n = int(u.sum())
    idcg = sum(1 / np.log2(r + 2) for r in range(min(n, k)))
    out.append(dcg / idcg if n > 0 else 0.0)
  return np.array(out)


def np_recall(logits, seen, unseen, k):
  out = []
  for lg, s, u in zip(logits, seen, unseen):
    top = np.argsort(-np.where(s > 0, -np.inf, lg), kind="stable")[:k]
    n = int(u.sum())
    out.append(u[top].sum() / min(k, n) if n > 0 else 0.0)
  return np.array(out)


def _rows_inputs(logits, seen, unseen):
  return critic.CriticInputs(loss=None, n_seen=None, n_unseen=None,
                             logits=jnp.asarray(logits, jnp.float32),
                             seen=jnp.asarray(seen, jnp.float32),
                             unseen=jnp.asarray(unseen, jnp.float32))


def test_oracle_target_ndcg_and_recall():
  rng = np.random.default_rng(7)
  b, m = 6, 30
  x = (rng.uniform(size=(b, m)) < 0.4).astype(np.float32)
  keep = (rng.uniform(size=(b, m)) < 0.5).astype(np.float32)
  seen, unseen = x * keep, x * (1 - keep)
  unseen[2] = 0.0  # a user with nothing dropped
  seen[2] = x[2]
  # Make seen items score highest so that excluding them matters.
  logits = rng.normal(size=(b, m)).astype(np.float32) + 5.0 * seen
  y = critic.oracle_target(_rows_inputs(logits, seen, unseen), make_cfg(k=5))
  assert y.shape == (b,) and y.dtype == jnp.float32
  np.testing.assert_allclose(y, np_ndcg(logits, seen, unseen, 5), atol=1e-6)
  assert float(y[2]) == 0.0
  y_r = critic.oracle_target(_rows_inputs(logits, seen, unseen), make_cfg(k=5, metric="recall"))
  np.testing.assert_allclose(y_r, np_recall(logits, seen, unseen, 5), atol=1e-6)
  # No gradient into the logits.
  cfg = make_cfg(k=5)
  g = jax.grad(lambda lg: critic.oracle_target(_rows_inputs(lg, seen, unseen), cfg).sum())(
      jnp.asarray(logits))
  np.testing.assert_array_equal(g, 0.0)
  with pytest.raises(ValueError, match="config.critic.metric='map'"):
    critic.oracle_target(_rows_inputs(logits, seen, unseen), make_cfg(metric="map"))


def test_naive_critic_reads_the_predicted_distribution_and_the_rows():
  cfg = make_cfg(kind="naive")
  params, state = critic.init(jax.random.PRNGKey(9), cfg, n_items=20)
  assert params["hidden_0"]["w"].shape == (40, 16) and params["output"]["w"].shape == (16, 1)
  assert state == {}
  rng = np.random.default_rng(8)
  logits = rng.normal(size=(4, 20)).astype(np.float32)
  seen = (rng.uniform(size=(4, 20)) < 0.3).astype(np.float32)
  unseen = ((rng.uniform(size=(4, 20)) < 0.3) * (1 - seen)).astype(np.float32)
  y, _ = critic.predict(params, state, _rows_inputs(logits, seen, unseen), cfg, train=True)
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  want = np_mlp(params, np.concatenate([p * (1 - seen), unseen], axis=-1))
  np.testing.assert_allclose(y, want, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Multi-device parity (shard_map over 4 fake CPU devices, in a subprocess).
# ---------------------------------------------------------------------------------------------

_SHARD_SCRIPT = textwrap.dedent("""
  import json
  import jax, jax.numpy as jnp, numpy as np, ml_collections
  from jax.sharding import PartitionSpec as P, AxisType
  from ract_jax import critic, metrics
  from ract_jax.critic import network
  assert jax.device_count() == 4, jax.devices()
  cfg = ml_collections.ConfigDict(dict(kind="features", hidden_dims=(8, 8, 4), l2=1e-2,
                                       normalize="batchnorm", bn_debias=True, metric="ndcg", k=5,
                                       use_seen=True, use_unseen=True))
  rng = np.random.default_rng(0)
  B = 16
  feats = np.stack([rng.integers(1, 40, B), rng.integers(0, 40, B), rng.uniform(50, 500, B)],
                   -1).astype(np.float32)
  feats[-3:] = np.nan  # padded rows of a partial last batch (one device has only 1 real row)
  mask = np.ones(B, np.float32); mask[-3:] = 0
  target = rng.uniform(0, 1, B).astype(np.float32)
  # numpy params (no PRNG compile in this process); the layout of `critic.init`.
  dims = (3, 8, 8, 4, 1)
  params = {("hidden_%d" % i if i < 3 else "output"): {
      "w": jnp.asarray(rng.uniform(-0.5, 0.5, (a, b)), jnp.float32),
      "b": jnp.asarray(rng.uniform(-0.1, 0.1, (b,)), jnp.float32)}
      for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))}
  inputs = lambda f: critic.CriticInputs(f[:, 2], f[:, 0], f[:, 1], None, None, None)
  state = network.init_norm_state(cfg, 3)
  _, state = critic.predict(params, state, inputs(feats[:8] * 1.3), cfg, train=True)

  def local(params, state, f, y, m, axis_name):
    psum = (lambda x: x) if axis_name is None else (lambda x: jax.lax.psum(x, axis_name))
    n_global = psum(jnp.sum(m))
    (l, (pred, st)), g = jax.value_and_grad(critic.loss, has_aux=True)(
        params, state, inputs(f), y, cfg, valid=m, n_global=n_global, batch_size=B,
        axis_name=axis_name)
    pe, _ = critic.predict(params, st, inputs(f), cfg, train=False, mask=m)
    r = metrics.pearson_r(f[:, 2], y, m, axis_name)
    return psum(l), st, psum(g), pred, pe, r

  single = jax.jit(lambda *a: local(*a, None))(params, state, feats, target, mask)
  mesh = jax.make_mesh((4,), ("data",), axis_types=(AxisType.Auto,))
  sharded = jax.jit(jax.shard_map(
      lambda *a: local(*a, "data"), mesh=mesh,
      in_specs=(P(), P(), P("data"), P("data"), P("data")),
      out_specs=(P(), P(), P(), P("data"), P("data"), P()), check_vma=False))(
          params, state, feats, target, mask)
  leaves_s = jax.tree_util.tree_leaves(single)
  leaves_m = jax.tree_util.tree_leaves(sharded)
  assert len(leaves_s) == len(leaves_m)
  # Padded rows are zeroed inside the critic, so even their outputs must agree.
  diffs = [float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
           for a, b in zip(leaves_s, leaves_m)]
  finite = all(bool(np.all(np.isfinite(np.asarray(x)))) for x in leaves_m)
  print("RESULT " + json.dumps(dict(max_diff=max(diffs), finite=finite, loss=float(single[0]),
                                    n_leaves=len(leaves_s))))
""")


def test_shard_map_shares_sum_to_the_single_device_loss_and_gradient():
  """Training's setting: per-device shares under check_vma=False, gradients psum'd."""
  env = dict(os.environ)
  flags = env.get("XLA_FLAGS", "")
  env["XLA_FLAGS"] = (flags + " --xla_force_host_platform_device_count=4").strip()
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  proc = subprocess.run([sys.executable, "-c", _SHARD_SCRIPT], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
  res = json.loads(line[len("RESULT "):])
  assert res["finite"], res
  assert res["max_diff"] < 1e-5, res
