"""Tests for ract_jax.losses: hand computations and O(M^2) pure-Python references."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ract_jax import losses


# ------------------------------------------------------------------------------------------------
# Pure-Python references (one user at a time, all pairs).


def _harm(r: int) -> float:
  return sum(1.0 / q for q in range(1, r + 1))


def _positions(s: np.ndarray) -> np.ndarray:
  """1-based descending positions, stable (lower index first among ties)."""
  order = sorted(range(len(s)), key=lambda i: (-s[i], i))
  pos = np.zeros(len(s), dtype=int)
  for r, i in enumerate(order):
    pos[i] = r + 1
  return pos


def ref_warp(s: np.ndarray, x: np.ndarray, margin: float = 1.0, rank: str = "violations"):
  """Eq. 9 literally: sum_i sum_j w(r_i) max(0, margin + s_j - s_i); returns (loss, grad)."""
  s = [float(v) for v in s]
  m = len(s)
  P = [i for i in range(m) if x[i] > 0]
  N = [j for j in range(m) if x[j] <= 0]
  positions = _positions(np.asarray(s))
  loss, grad = 0.0, np.zeros(m)
  for i in P:
    viol = [j for j in N if margin + s[j] - s[i] > 0]
    r = len(viol) if rank == "violations" else int(positions[i])
    w = _harm(r)
    for j in N:
      h = max(0.0, margin + s[j] - s[i])
      loss += w * h
      if h > 0:
        grad[j] += w
        grad[i] -= w
  return loss, grad


def ref_lambdarank(s: np.ndarray, x: np.ndarray, k=None):
  """|dNDCG|-weighted RankNet loss and the LambdaRank lambdas, all pairs in Python."""
  s = [float(v) for v in s]
  m = len(s)
  ranks = _positions(np.asarray(s))

  def disc(r):
    return 0.0 if (k is not None and r > k) else 1.0 / math.log2(1 + r)

  P = [i for i in range(m) if x[i] > 0]
  N = [j for j in range(m) if x[j] <= 0]
  n = len(P) if k is None else min(len(P), k)
  idcg = sum(1.0 / math.log2(1 + r) for r in range(1, n + 1))
  loss, lam = 0.0, np.zeros(m)
  for i in P:
    for j in N:
      delta = abs(disc(ranks[i]) - disc(ranks[j])) / idcg
      loss += delta * math.log1p(math.exp(-(s[i] - s[j])))
      rho = delta / (1.0 + math.exp(s[i] - s[j]))  # |dNDCG| * sigmoid(-(s_i - s_j))
      lam[i] -= rho
      lam[j] += rho
  return loss, lam


def ref_ndcg(s: np.ndarray, x: np.ndarray) -> float:
  ranks = _positions(s)
  n = int((x > 0).sum())
  dcg = sum(1.0 / math.log2(1 + ranks[i]) for i in range(len(s)) if x[i] > 0)
  return dcg / sum(1.0 / math.log2(1 + r) for r in range(1, n + 1))


B, M = 8, 12  # the shape shared by the randomised tests, so that compiled functions are reused


def _random_batch(seed: int, b: int = B, m: int = M, p: float = 0.35):
  rng = np.random.default_rng(seed)
  s = rng.normal(scale=1.5, size=(b, m)).astype(np.float32)  # continuous: no ties
  x = (rng.random((b, m)) < p).astype(np.float32)
  x[0, :] = 0.0                 # no positives
  x[1, :] = 1.0                 # all positives
  x[2, :] = 0.0
  x[2, 3] = 1.0                 # a single positive
  x[3, :] = 1.0
  x[3, 5] = 0.0                 # a single negative
  return s, x


@functools.lru_cache(maxsize=None)
def _jitted(name: str, kw: tuple = ()):
  """Jitted `(s, x) -> per-user loss` and `(s, x, w) -> (loss, d<w, loss>/ds)` for LOSSES[name]."""
  fn = functools.partial(losses.per_user_loss, name, **dict(kw))

  def value_and_vjp(s, x, w):
    v, pullback = jax.vjp(lambda s: fn(s, x), s)
    return v, pullback(w)[0]

  return jax.jit(fn), jax.jit(value_and_vjp)


def value_and_grad(name, s, x, w=None, **kw):
  """Per-user losses and the gradient of `sum_u w_u loss_u` (w defaults to ones)."""
  s = jnp.asarray(s, jnp.float32)
  w = jnp.ones(s.shape[0], jnp.float32) if w is None else jnp.asarray(w, jnp.float32)
  v, g = _jitted(name, tuple(sorted(kw.items())))[1](s, jnp.asarray(x, jnp.float32), w)
  return np.asarray(v), np.asarray(g)


def value(name, s, x, **kw):
  return np.asarray(_jitted(name, tuple(sorted(kw.items())))[0](
      jnp.asarray(s, jnp.float32), jnp.asarray(x, jnp.float32)))


# ------------------------------------------------------------------------------------------------
# Hand computations.


def test_multinomial_figure1():
  # Paper Fig. 1: target (1,1,0,0); prediction A = (.8,.1,.05,.05) gives -log .08, B -log .09.
  x = np.array([[1.0, 1, 0, 0], [1.0, 1, 0, 0]])
  probs = np.array([[0.8, 0.1, 0.05, 0.05], [0.3, 0.3, 0.35, 0.05]])
  got = value("multinomial", np.log(probs) + 3.0, x)  # softmax is shift-invariant
  np.testing.assert_allclose(got, [-math.log(0.08), -math.log(0.09)], rtol=1e-5)


def test_multinomial_zero_rows_and_minus_inf_on_negatives():
  got = value("multinomial", np.array([[0.0, 0.0, -np.inf], [0.3, -1.0, 2.0]]),
              np.array([[1.0, 0, 0], [0.0, 0, 0]]))
  np.testing.assert_allclose(got, [math.log(2.0), 0.0], rtol=1e-6)


def test_gaussian_and_weighted_hand():
  logits = np.array([[0.5, 2.0, -1.0]])
  x = np.array([[1.0, 0.0, 1.0]])
  # residuals 0.5, -2, 2 -> squares .25, 4, 4
  np.testing.assert_allclose(value("gaussian", logits, x), [0.5 * 8.25], rtol=1e-6)
  np.testing.assert_allclose(value("weighted_sq", logits, x), [5 * 0.25 + 4 + 5 * 4], rtol=1e-6)
  np.testing.assert_allclose(value("weighted_sq", logits, x, positive_weight=2.0),
                             [2 * 0.25 + 4 + 2 * 4], rtol=1e-6)


def test_warp_hand():
  # s = (2, 0, 1.5, -1), positives {0, 3}, negatives {1, 2}, margin 1.
  # i=0: hinges max(0, 1+0-2)=0, max(0, 1+1.5-2)=0.5 -> r=1, w=1, contributes 0.5.
  # i=3: hinges 1+0+1=2, 1+1.5+1=3.5 -> r=2, w=1.5, contributes 1.5*5.5=8.25.
  s = np.array([[2.0, 0.0, 1.5, -1.0]])
  x = np.array([[1.0, 0, 0, 1]])
  v, g = value_and_grad("warp", s, x)
  np.testing.assert_allclose(v, [8.75], rtol=1e-6)
  # d/ds: positive 0: -1*1; positive 3: -1.5*2; negative 1: 1.5; negative 2: 1 + 1.5.
  np.testing.assert_allclose(g, [[-1.0, 1.5, 2.5, -3.0]], rtol=1e-6)
  # rank="position": positions 1 and 4 -> w = 1 and 1 + 1/2 + 1/3 + 1/4.
  np.testing.assert_allclose(value("warp", s, x, rank="position"),
                             [0.5 + (1 + 1 / 2 + 1 / 3 + 1 / 4) * 5.5], rtol=1e-6)
  # margin 0: only (3 vs 1) 1.0 and (3 vs 2) 2.5 violate; r_3 = 2 violations -> w = 1.5.
  np.testing.assert_allclose(value("warp", s, x, margin=0.0), [1.5 * 3.5], rtol=1e-6)


def test_lambdarank_hand():
  # One positive ranked second behind one negative: |dNDCG| = |1/log2(3) - 1| / IDCG(1) = 1.
  s = np.array([[0.0, 1.0]])
  x = np.array([[1.0, 0.0]])
  delta = 1.0 - 1.0 / math.log2(3.0)
  v, g = value_and_grad("lambdarank", s, x)
  np.testing.assert_allclose(v, [delta * math.log1p(math.e)], rtol=1e-5)
  sig = 1.0 / (1.0 + math.exp(-1.0))  # sigmoid(-(s_i - s_j)) = sigmoid(1)
  np.testing.assert_allclose(g, [[-delta * sig, delta * sig]], rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# Against the O(M^2) references (value and gradient; random cotangents check the VJP scaling).

WARP_CONFIGS = [{}, {"rank": "position"}, {"margin": 0.0, "rank": "position"}]
LAMBDARANK_CONFIGS = [{}, {"k": 3, "chunk_size": 3}]


@pytest.mark.parametrize("kw", WARP_CONFIGS, ids=str)
def test_warp_matches_reference(kw):
  for seed in range(3):
    s, x = _random_batch(seed)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, size=B)
    v, g = value_and_grad("warp", s, x, w, **kw)
    for u in range(B):
      want, want_g = ref_warp(s[u], x[u], **kw)
      np.testing.assert_allclose(v[u], want, rtol=2e-5, atol=2e-5)
      np.testing.assert_allclose(g[u], w[u] * want_g, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("kw", LAMBDARANK_CONFIGS, ids=str)
def test_lambdarank_matches_reference(kw):
  for seed in range(3):
    s, x = _random_batch(seed)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, size=B)
    v, g = value_and_grad("lambdarank", s, x, w, **kw)
    np.testing.assert_allclose(value("lambdarank", s, x, **kw), v, rtol=1e-6)  # primal == fwd
    for u in range(B):
      want, want_lam = ref_lambdarank(s[u], x[u], kw.get("k"))
      np.testing.assert_allclose(v[u], want, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(g[u], w[u] * want_lam, rtol=1e-5, atol=1e-6)


def test_warp_larger_row():
  # More items, many violators: exercises the sort / searchsorted / suffix sums.
  rng = np.random.default_rng(11)
  s = rng.normal(size=(2, 200)).astype(np.float32)
  x = (rng.random((2, 200)) < 0.1).astype(np.float32)
  v, g = value_and_grad("warp", s, x)
  for u in range(2):
    want, want_g = ref_warp(s[u], x[u])
    np.testing.assert_allclose(v[u], want, rtol=1e-4)
    np.testing.assert_allclose(g[u], want_g, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# Generic properties.


ALL = sorted(losses.LOSSES)


@pytest.mark.parametrize("name", ALL)
def test_jit_vmap_and_degenerate_rows(name):
  s, x = _random_batch(7)
  v, g = value_and_grad(name, s, x)
  assert v.shape == (B,) and v.dtype == np.float32
  assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
  np.testing.assert_allclose(value(name, s, x), v, rtol=1e-5, atol=1e-5)
  # vmap over an extra leading axis (e.g. samples), values and gradients.
  fn = functools.partial(losses.per_user_loss, name)
  s2, x2 = np.stack([s, s[::-1]]), np.stack([x, x[::-1]])
  vv, gv = jax.jit(jax.vmap(jax.value_and_grad(lambda s, x: fn(s, x).sum())))(s2, x2)
  np.testing.assert_allclose(vv, [v.sum(), v.sum()], rtol=1e-5)
  np.testing.assert_allclose(gv[0], g, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(gv[1], g[::-1], rtol=1e-5, atol=1e-5)
  if name in ("warp", "lambdarank"):
    # No positives (row 0) or no negatives (row 1): no pairs -> 0 loss and 0 gradient.
    np.testing.assert_array_equal(v[:2], 0.0)
    np.testing.assert_array_equal(g[:2], 0.0)
  if name == "multinomial":
    assert v[0] == 0.0 and np.all(g[0] == 0.0)


@pytest.mark.parametrize("name", ALL)
def test_one_descent_step_improves_ndcg(name):
  # Every row is a toy user whose positives start near the bottom of the ranking.
  rng = np.random.default_rng(3)
  x = np.zeros((B, M), np.float32)
  s = rng.normal(scale=0.3, size=(B, M)).astype(np.float32)
  for u in range(B):
    p = rng.choice(M, size=1 + u % 4, replace=False)
    x[u, p] = 1.0
    s[u, p] -= 0.4
  _, g = value_and_grad(name, s, x)
  before, after = np.zeros(B), np.zeros(B)
  for u in range(B):
    lr = 1.0 / max(np.abs(g[u]).max(), 1e-12)  # normalised step so every loss moves comparably
    before[u], after[u] = ref_ndcg(s[u], x[u]), ref_ndcg(s[u] - lr * g[u], x[u])
  assert np.all(after > before + 0.05), (name, before, after)


@pytest.mark.parametrize("name", ["warp", "lambdarank"])
def test_inside_shard_map(name):
  # The training step runs the loss per device under `jax.shard_map` (the while_loop's carries
  # must have the inputs' varying-axes type); a 1-device mesh is enough to trace that path.
  from jax.sharding import NamedSharding, PartitionSpec as P
  mesh = jax.make_mesh((1,), ("data",))
  s, x = _random_batch(5)

  def total(s, x):
    return jax.lax.psum(losses.per_user_loss(name, s, x).sum(), "data")

  sm = jax.shard_map(total, mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P())
  sh = NamedSharding(mesh, P("data"))
  v, g = jax.jit(jax.value_and_grad(sm))(jax.device_put(jnp.asarray(s), sh),
                                         jax.device_put(jnp.asarray(x), sh))
  want_v, want_g = value_and_grad(name, s, x)
  np.testing.assert_allclose(v, want_v.sum(), rtol=1e-5)
  np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-6)


def test_per_user_loss_dispatch_and_error():
  s, x = _random_batch(0)
  np.testing.assert_allclose(
      value("weighted_sq", s, x, positive_weight=3.0),
      np.sum((1 + 2 * x) * (x - s) ** 2, axis=-1), rtol=1e-5)
  with pytest.raises(ValueError, match="config.actor.loss"):
    losses.per_user_loss("bpr", s, x)
  with pytest.raises(ValueError):
    losses.warp_loss(s, x, rank="nope")
  with pytest.raises(ValueError):
    losses.lambdarank_loss(s, x, k=0)
