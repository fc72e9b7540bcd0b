"""Actors: shapes and initialisation of each architecture, the forward pass against a dense numpy
reference, the KL term, the input normalisation and the beta schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ract_jax import config_base as base
from ract_jax import actors

M = 40


def _cfg(kind="multvae", shape="ract", **kw):
  c = base.get_base_config().actor
  c.kind, c.shape = kind, shape
  c.hidden_dim, c.latent_dim = 12, 5
  for k, v in kw.items():
    setattr(c, k, v)
  return c


@pytest.mark.parametrize("kind,shape,layers", [
    ("multvae", "ract", {"enc0": (M, 12), "mu": (12, 5), "logvar": (12, 5), "dec0": (5, 12),
                         "dec1": (12, M)}),
    ("multvae", "liang", {"enc0": (M, 12), "enc1": (12, 10), "dec0": (5, 12), "dec1": (12, M)}),
    ("multdae", "ract", {"enc0": (M, 12), "enc1": (12, 5), "dec0": (5, 12), "dec1": (12, M)}),
    ("multdae", "liang", {"enc0": (M, 5), "dec1": (5, M)}),
])
def test_init_shapes_and_scales(kind, shape, layers):
  params = actors.init(jax.random.PRNGKey(0), _cfg(kind, shape), M)
  assert {k: v["w"].shape for k, v in params.items()} == layers
  for name, (fan_in, fan_out) in layers.items():
    limit = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform.
    w, b = np.asarray(params[name]["w"]), np.asarray(params[name]["b"])
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.5 * limit
    assert b.shape == (fan_out,) and np.abs(b).max() <= 0.002 + 1e-7  # trunc. normal, std 0.001.


def test_bad_kind_names_the_option():
  with pytest.raises(ValueError, match="config.actor.kind"):
    actors.init(jax.random.PRNGKey(0), _cfg("vae"), M)


def _sparse(rows):
  seg = np.concatenate([[r] * len(items) for r, items in enumerate(rows)]).astype(np.int32)
  item = np.concatenate(rows).astype(np.int32)
  return seg, item


def _numpy_forward(params, kind, shape, x):
  p = {k: {kk: np.asarray(vv, np.float64) for kk, vv in v.items()} for k, v in params.items()}
  d = lambda name, h: h @ p[name]["w"] + p[name]["b"]
  h = np.tanh(d("enc0", x))
  if kind == "multvae":
    if shape == "ract":
      mu, logvar = d("mu", h), d("logvar", h)
    else:
      mu, logvar = np.split(d("enc1", h), 2, axis=-1)
    kl = np.sum(0.5 * (-logvar + np.exp(logvar) + mu**2 - 1), -1)
    return d("dec1", np.tanh(d("dec0", mu))), kl
  if shape == "ract":
    h = np.tanh(d("dec0", d("enc1", h)))
  return d("dec1", h), np.zeros(x.shape[0])


@pytest.mark.parametrize("kind,shape", [("multvae", "ract"), ("multvae", "liang"),
                                        ("multdae", "ract"), ("multdae", "liang")])
def test_eval_forward_matches_dense_reference(kind, shape):
  cfg = _cfg(kind, shape)
  params = actors.init(jax.random.PRNGKey(1), cfg, M)
  rows = [[1, 5, 7], [0], [3, 4, 5, 6, 39]]
  seg, item = _sparse(rows)
  counts = jnp.array([len(r) for r in rows], jnp.int32)
  values = actors.input_values(counts, seg, jnp.ones(seg.shape, bool), cfg.keep_prob, train=False)
  out = actors.apply(params, cfg, actors.SparseInput(seg, item, values, jnp.arange(3)), None,
                     train=False)
  x = np.zeros((3, M))
  for r, items in enumerate(rows):
    x[r, items] = 1 / np.sqrt(len(items))  # l2-normalised row.
  logits, kl = _numpy_forward(params, kind, shape, x)
  np.testing.assert_allclose(out.logits, logits, atol=1e-5)
  np.testing.assert_allclose(out.kl, kl, atol=1e-5)


def test_training_input_is_masked_full_row_norm_over_keep():
  counts = jnp.array([4, 1], jnp.int32)
  seg = jnp.array([0, 0, 0, 0, 1], jnp.int32)
  kept = jnp.array([True, False, True, False, True])
  v = actors.input_values(counts, seg, kept, 0.5, train=True)
  # l2-normalise the FULL row (norm 2 for 4 items), then mask, then divide by keep (Pitfall 4).
  np.testing.assert_allclose(v, [1.0, 0.0, 1.0, 0.0, 2.0])


def test_training_samples_z_keyed_by_user():
  cfg = _cfg()
  params = actors.init(jax.random.PRNGKey(1), cfg, M)
  seg, item = _sparse([[1, 2], [3]])
  vals = jnp.ones(3)
  inp = actors.SparseInput(seg, item, vals, jnp.array([10, 11]))
  a = actors.apply(params, cfg, inp, jax.random.PRNGKey(0), train=True).logits
  b = actors.apply(params, cfg, inp, jax.random.PRNGKey(1), train=True).logits
  c = actors.apply(params, cfg, inp, None, train=False).logits
  assert not np.allclose(a, b) and not np.allclose(a, c)


def test_linear_shapes_and_deterministic_posterior():
  rows = [[1, 5, 7], [0, 2]]
  seg, item = _sparse(rows)
  vals = jnp.ones(seg.shape[0])
  inp = actors.SparseInput(seg, item, vals, jnp.arange(2))
  x = np.zeros((2, M))
  for r, items in enumerate(rows):
    x[r, items] = 1
  # Linear DAE (the authors' MF / WARP encoder): logits = (x W0 + b0) W1 + b1.
  linear = lambda p: (x @ np.asarray(p["enc0"]["w"]) + np.asarray(p["enc0"]["b"])) @ np.asarray(
      p["dec1"]["w"]) + np.asarray(p["dec1"]["b"])
  cfg = _cfg("multdae", "linear")
  p = actors.init(jax.random.PRNGKey(0), cfg, M)
  np.testing.assert_allclose(actors.apply(p, cfg, inp, None, train=True).logits, linear(p),
                             atol=1e-5)
  # Linear VAE at evaluation: z = mu = x W0 + b0, logits = z W1 + b1.
  cfg = _cfg("multvae", "linear")
  p = actors.init(jax.random.PRNGKey(0), cfg, M)
  assert set(p) == {"enc0", "logvar", "dec1"}
  np.testing.assert_allclose(actors.apply(p, cfg, inp, None, train=False).logits, linear(p),
                             atol=1e-5)
  # Delta posterior: training output equals evaluation output, KL is 0 (Table 2, beta = 0).
  cfg = _cfg(deterministic=True)
  p = actors.init(jax.random.PRNGKey(0), cfg, M)
  tr = actors.apply(p, cfg, inp, jax.random.PRNGKey(5), train=True)
  ev = actors.apply(p, cfg, inp, None, train=False)
  np.testing.assert_allclose(tr.logits, ev.logits)
  assert float(jnp.abs(tr.kl).sum()) == 0.0


def test_per_user_loss_follows_config():
  logits = jnp.array([[0.0, 1.0, 2.0]])
  x = jnp.array([[1.0, 0.0, 1.0]])
  lsm = np.asarray(jax.nn.log_softmax(logits))
  np.testing.assert_allclose(actors.per_user_loss(_cfg(), logits, x),
                             [-(lsm[0, 0] + lsm[0, 2])], rtol=1e-6)
  sq = actors.per_user_loss(_cfg(loss="weighted_sq", positive_weight=5.0), logits, x)
  np.testing.assert_allclose(sq, [5 * 1 + 1 * 1 + 5 * 1])


def test_beta_schedules():
  cfg = _cfg(anneal_cap=0.2, anneal_epochs=10)
  # Table 5: linear to the cap over anneal_epochs epochs, then fixed.
  np.testing.assert_allclose(actors.beta_at(0, cfg, 5), 0.0)
  np.testing.assert_allclose(actors.beta_at(25, cfg, 5), 0.1)
  np.testing.assert_allclose(actors.beta_at(50, cfg, 5), 0.2)
  np.testing.assert_allclose(actors.beta_at(500, cfg, 5), 0.2)
  cfg.anneal_schedule = "steps"  # The authors' code: min(cap, step / 200000).
  np.testing.assert_allclose(actors.beta_at(20_000, cfg, 5), 0.1)
  np.testing.assert_allclose(actors.beta_at(60_000, cfg, 5), 0.2)


def test_l2_penalty_forms():
  cfg = _cfg("multdae", "liang", l2=0.5)
  params = {"a": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}}
  np.testing.assert_allclose(actors.l2_penalty(params, cfg), 0.5 * 4)
  cfg.l2_on_biases = True
  np.testing.assert_allclose(actors.l2_penalty(params, cfg), 0.5 * 6)


@pytest.mark.parametrize("kind,shape", [("multvae", "ract"), ("multvae", "linear"),
                                        ("multdae", "liang")])
def test_dense_first_layer_equals_sparse_forward_and_gradient(kind, shape):
  # Padding (value 0 at row 0, item 0), a dropped entry and a repeated (row, item) entry.
  cfg = _cfg(kind, shape)
  params = actors.init(jax.random.PRNGKey(2), cfg, M)
  seg = jnp.array([0, 0, 0, 1, 2, 2, 2, 0, 0], jnp.int32)
  item = jnp.array([1, 5, 7, 0, 3, 3, 39, 0, 0], jnp.int32)
  values = jnp.array([0.5, 0.0, 0.5, 1.0, 0.3, 0.2, 0.4, 0.0, 0.0])
  inp = actors.SparseInput(seg, item, values, jnp.arange(3))

  def loss(p, form):
    out = actors.apply(p, cfg, inp, jax.random.PRNGKey(3), train=True, chunk=4, first_layer=form)
    return jnp.sum(jnp.sin(out.logits)) + jnp.sum(out.kl), out.logits

  (ls, sparse), gs = jax.value_and_grad(loss, has_aux=True)(params, "sparse")
  (ld, dense), gd = jax.value_and_grad(loss, has_aux=True)(params, "dense")
  np.testing.assert_allclose(dense, sparse, rtol=1e-5, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), gd, gs)
  with pytest.raises(ValueError, match="first_layer"):
    actors.apply(params, cfg, inp, None, train=False, first_layer="blocked")


def test_first_layer_form_by_density():
  cfg = _cfg()
  assert cfg.first_layer == "auto"
  assert actors.first_layer_form(cfg, 0.045) == "sparse"  # ML-1M's density.
  assert actors.first_layer_form(cfg, 0.0036) == "sparse"  # ML-20M's.
  assert actors.first_layer_form(cfg, 0.3) == "dense"
  cfg.dense_above_density = 0.04
  assert actors.first_layer_form(cfg, 0.045) == "dense"
  cfg.first_layer = "sparse"
  assert actors.first_layer_form(cfg, 0.5) == "sparse"
  cfg.first_layer = "dense"
  assert actors.first_layer_form(cfg, 1e-6) == "dense"
  cfg.first_layer = "both"
  with pytest.raises(ValueError, match="config.actor.first_layer"):
    actors.first_layer_form(cfg, 0.1)


@pytest.mark.parametrize("precision", ["default", "highest", "tf32"])
def test_matmul_precision(precision):
  cfg = _cfg(matmul_precision=precision)
  params = actors.init(jax.random.PRNGKey(1), cfg, M)
  seg, item = _sparse([[1, 5, 7], [0], [3, 4, 5, 6, 39]])
  inp = actors.SparseInput(seg, item, jnp.full(seg.shape, 0.5), jnp.arange(3))
  f = lambda p, c: jnp.sum(jnp.tanh(actors.apply(p, c, inp, None, False,
                                                 first_layer="dense").logits))
  ref, ref_g = jax.value_and_grad(f)(params, _cfg())
  out, g = jax.value_and_grad(f)(params, cfg)
  # All float32 on the CPU backend; elsewhere 'default' / 'tf32' may round to TF32 (10 bits).
  tol = 1e-6 if jax.default_backend() == "cpu" else 1e-2
  np.testing.assert_allclose(out, ref, rtol=tol)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=tol * np.abs(b).max()), g, ref_g)
  with pytest.raises(ValueError, match="config.actor.matmul_precision"):
    actors.apply(params, _cfg(matmul_precision="fp8"), inp, None, False)


def test_bf16_is_refused_with_its_measurement_and_rounds_when_called():
  with pytest.raises(ValueError, match=r"matmul_precision='bf16'.*not offered.*0\.0033"):
    actors.matmul_fn("bf16")
  from ract_jax.actors.base import bf16_matmul
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  w = jax.random.normal(jax.random.PRNGKey(1), (16, 3))
  f = lambda mm: lambda x, w: jnp.sum(jnp.sin(mm(x, w)))
  out, ref = bf16_matmul(x, w), x @ w
  assert out.dtype == jnp.float32 and float(jnp.abs(out - ref).max()) > 0  # It does round ...
  np.testing.assert_allclose(out, ref, atol=3e-2 * float(jnp.abs(ref).max()))  # ... to ~8 bits.
  for a, b in zip(jax.grad(f(bf16_matmul), (0, 1))(x, w), jax.grad(f(jnp.matmul), (0, 1))(x, w)):
    np.testing.assert_allclose(a, b, atol=3e-2 * float(jnp.abs(b).max()))
