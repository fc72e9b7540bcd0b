"""The feature-based critic of RaCT (Lobel et al., ICLR 2020, section 3, eq. 5-7; Table 4).

The critic maps a 3-dimensional per-user feature vector (eq. 5) to an estimate of the ranking score
of the actor's prediction (NDCG@100 by default). It is pre-trained with the MSE of eq. 6 against the
oracle (`oracle_target`) and then maximised by the actor (eq. 7, implemented by the training loop).

Everything here is a pure function of plain nested dicts of `jnp` arrays (no Flax modules), jittable
and usable inside `jax.shard_map` (pass `axis_name`). `config` is either the root config (its
`critic` block is used) or the `c.critic` block itself; it is read at trace time (static).

Parameters: `{'hidden_0': {'w', 'b'}, ..., 'hidden_{L-1}': {...}, 'output': {'w', 'b'}}`, with
`w [fan_in, fan_out]` and `b [fan_out]`, float32.

State (feature normalisation statistics), for `normalize='batchnorm'`:
`{'mean': [F], 'var': [F], 'steps': int32 []}`; `{}` for `normalize='none'`.

Normalisation modes (`config.normalize`, see notes `original-implementations.md` §3 and Pitfall 7):
  * `'none'`: the authors' code exactly. Their `tf.contrib.layers.batch_norm(renorm=True,
    trainable=False)` never updated its statistics (empty `UPDATE_OPS`; moving mean/var stay 0/1)
    and had no scale/offset; the critic and AC phases run it in inference mode, which computes
    `(x - 0) / sqrt(1 + eps)` with TF's default `eps = 1e-3`. So the critic sees the raw counts and
    the raw NLL scaled by `1 / sqrt(1.001)`. That constant is used here in BOTH `train` modes,
    because the authors' critic was trained (stage 2) and used (stage 3) in inference mode.
  * `'batchnorm'` (default; what Table 4 and Appendix E describe: "Batch Normalization is used to
    normalize the input features, because the magnitude of the inputs (NLL) change as training
    progresses"): a working batch norm without learnable scale/offset (the authors had none).
    Training mode normalises with the batch statistics of the VALID rows (`mask`), device-global
    under `shard_map`, with gradients flowing through the statistics into the features (stage 3
    backpropagates into the NLL), and updates exponential moving averages with Keras'
    `momentum = 0.99` and TF's `eps = 1e-3`. Evaluation mode normalises with the running statistics.

Running statistics: `mean`/`var` are TF's moving averages exactly (initialised to 0 and 1, updated
`m <- 0.99 m + 0.01 batch_stat`). Evaluation uses them *bias-corrected* for the initialisation (as
Adam does): `(ema_t - 0.99^t * init) / (1 - 0.99^t)` is the exact exponentially weighted average of
the `t` batch statistics seen so far. With pure TF semantics a small dataset (a few steps per epoch)
would evaluate for hundreds of steps with statistics dominated by the 0/1 initialisation, i.e.
an un-normalised NLL in the thousands. Before any training step (`t = 0`) the evaluation uses mean
0 and var 1, so an untrained batch-norm critic evaluates exactly like the `'none'` critic
(`x / sqrt(1.001)`). Set `config.bn_debias = False` for TF's raw moving averages.
Variance: the biased (population) batch variance, as Keras / Flax, both to normalise and for the
moving average; computed in two passes (mean, then centred squares) because the NLL feature is in
the thousands and `E[x^2] - E[x]^2` loses float32 precision.

Padded rows (`mask == 0`, e.g. a partial last batch filled up to a static shape): their features are
replaced by 0 before anything else, so they never affect statistics, losses or gradients (even if
their features are inf/NaN); their predictions are meaningless. A batch with no valid row (on all
devices) leaves the running statistics unchanged.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

# Keras / `tf.layers.batch_normalization` default momentum. (`tf.contrib.layers.batch_norm`, the
# authors' call, defaults to decay 0.999, but their statistics were never updated, so no value is
# "theirs"; 0.99 tracks the drifting NLL of stage 3 faster.)
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3  # TF default epsilon (both APIs); the source of the authors' x / sqrt(1.001).
# The authors' frozen batch norm in inference mode: (x - 0) / sqrt(1 + 1e-3) (notes §3, Pitfall 7).
FROZEN_BN_SCALE = 1.0 / math.sqrt(1.0 + BN_EPSILON)

Params = dict
State = dict


# ---------------------------------------------------------------------------------------------
# Config helpers.
# ---------------------------------------------------------------------------------------------


def _get(cfg: Any, name: str, default: Any = None) -> Any:
  """`cfg.name` for ConfigDicts / namespaces, `cfg[name]` for mappings, else `default`."""
  if isinstance(cfg, Mapping):
    return cfg.get(name, default)
  try:
    return getattr(cfg, name)
  except (AttributeError, KeyError):
    return default


def _critic_cfg(config: Any) -> Any:
  """The `critic` block of a root config, or `config` itself when it already is that block."""
  sub = _get(config, "critic", None)
  return config if sub is None else sub


def _normalize_mode(cfg: Any) -> str:
  mode = _get(cfg, "normalize", "batchnorm")
  if mode not in ("batchnorm", "none"):
    raise ValueError(f"critic.normalize must be 'batchnorm' or 'none', got {mode!r}")
  return mode


def n_features(config: Any) -> int:
  """Number of critic features F: NLL plus |H1| if `use_seen` plus |H0| if `use_unseen`."""
  cfg = _critic_cfg(config)
  return 1 + int(bool(_get(cfg, "use_seen", True))) + int(bool(_get(cfg, "use_unseen", True)))


# ---------------------------------------------------------------------------------------------
# Collective helpers (identity without an axis name).
# ---------------------------------------------------------------------------------------------


def _psum(x, axis_name):
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def _valid(mask, batch: int) -> jnp.ndarray:
  """Float32 `[B]` 1/0 validity weights (all ones when `mask` is None)."""
  if mask is None:
    return jnp.ones((batch,), jnp.float32)
  return (jnp.asarray(mask).reshape(batch) > 0).astype(jnp.float32)


# ---------------------------------------------------------------------------------------------
# Features (eq. 5).
# ---------------------------------------------------------------------------------------------


def critic_features(nll: jnp.ndarray, n_seen: jnp.ndarray, n_unseen: jnp.ndarray,
                    config: Any) -> jnp.ndarray:
  """The critic's input features h (eq. 5), in the authors' column order.

  Column order is the authors' code (`base_models.py:319-335`, notes §3 and Pitfall 8), not the
  paper's `[L_E, |H0|, |H1|]`: `[|H1| (kept / seen input items), |H0| (dropped / unseen items),
  NLL]`. `config.use_seen = False` drops the |H1| column and `config.use_unseen = False` the |H0|
  column (Figure 5 ablation; `omit_num_seen_from_critic` / `omit_num_unseen_from_critic`).

  Args:
    nll: `[B]` the actor's multinomial NLL, `-sum_i x_i log_softmax(logits)_i` over ALL of the
      user's items (seen and unseen), no KL (Pitfall 5). Gradients flow through this column.
    n_seen: `[B]` number of kept input items |H1| = sum(x * b).
    n_unseen: `[B]` number of dropped items |H0| = sum(x * (1 - b)).
    config: the root config or its `critic` block (`use_seen`, `use_unseen`).

  Returns:
    float32 `[B, F]` with `F = n_features(config)`.
  """
  cfg = _critic_cfg(config)
  cols = []
  if _get(cfg, "use_seen", True):
    cols.append(n_seen)
  if _get(cfg, "use_unseen", True):
    cols.append(n_unseen)
  cols.append(nll)
  return jnp.stack([jnp.asarray(c, jnp.float32) for c in cols], axis=-1)


# ---------------------------------------------------------------------------------------------
# Parameters and state.
# ---------------------------------------------------------------------------------------------


def _glorot_layers(rng, dims: tuple[int, ...]) -> list[dict]:
  """Dense layers `dims[i] -> dims[i+1]`: Glorot-uniform weights, zero biases.

  `w ~ U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))` (TF `xavier_initializer()`, i.e.
  `jax.nn.initializers.glorot_uniform`). All weights come from ONE `uniform` draw, sliced per layer:
  the same distribution, but one PRNG kernel to compile per architecture instead of one per layer
  shape (threefry compiles take ~1 s each on a small CPU).
  """
  shapes = list(zip(dims[:-1], dims[1:]))
  sizes = [a * b for a, b in shapes]
  u = jax.random.uniform(rng, (sum(sizes),), jnp.float32, minval=-1.0, maxval=1.0)
  layers, start = [], 0
  for (fan_in, fan_out), size in zip(shapes, sizes):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    w = u[start:start + size].reshape(fan_in, fan_out) * limit
    layers.append({"w": w, "b": jnp.zeros((fan_out,), jnp.float32)})
    start += size
  return layers


def init_state(config: Any, n_features: int) -> State:
  """Initial feature-normalisation state.

  Args:
    config: the root config or its `critic` block (`normalize`).
    n_features: F.

  Returns:
    `{'mean': zeros [F], 'var': ones [F], 'steps': int32 0}` for `'batchnorm'` (TF's initial
    moving statistics; `steps` counts updates for the bias correction), `{}` for `'none'`.
  """
  if _normalize_mode(_critic_cfg(config)) == "none":
    return {}
  return {"mean": jnp.zeros((n_features,), jnp.float32),
          "var": jnp.ones((n_features,), jnp.float32),
          "steps": jnp.zeros((), jnp.int32)}


def init(rng: jax.Array, config: Any, n_features: int) -> tuple[Params, State]:
  """Initialises the critic MLP (Table 4: F -> 100 ReLU -> 100 ReLU -> 10 ReLU -> 1 sigmoid).

  Weights are Glorot (Xavier) uniform and biases zero, as `slim.fully_connected` (Pitfall 8).

  Args:
    rng: PRNG key.
    config: the root config or its `critic` block (`hidden_dims`, `normalize`).
    n_features: F, the width of the features (`n_features(config)`).

  Returns:
    `(params, state)`: params `{'hidden_i': {'w': [d_in, d_out], 'b': [d_out]}, 'output': {'w':
    [d_last, 1], 'b': [1]}}`; state from `init_state`.
  """
  cfg = _critic_cfg(config)
  hidden = tuple(int(d) for d in _get(cfg, "hidden_dims", (100, 100, 10)))
  layers = _glorot_layers(rng, (int(n_features),) + hidden + (1,))
  params = {f"hidden_{i}": layer for i, layer in enumerate(layers[:-1])}
  params["output"] = layers[-1]
  return params, init_state(cfg, n_features)


# ---------------------------------------------------------------------------------------------
# Forward pass.
# ---------------------------------------------------------------------------------------------


def _mlp(params: Params, h: jnp.ndarray) -> jnp.ndarray:
  """ReLU hidden layers `hidden_0..hidden_{L-1}`, then `output` and a sigmoid; returns `[B]`."""
  n_hidden = sum(1 for name in params if name.startswith("hidden_"))
  for i in range(n_hidden):
    layer = params[f"hidden_{i}"]
    h = jax.nn.relu(h @ layer["w"] + layer["b"])
  out = h @ params["output"]["w"] + params["output"]["b"]
  return jax.nn.sigmoid(out[..., 0])


def masked_moments(x: jnp.ndarray, mask: jnp.ndarray | None = None,
                   axis_name: str | None = None) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """Per-feature mean and biased variance over the valid rows (device-global with `axis_name`).

  Two passes (global mean by psum of sums / psum of counts, then psum of centred squares), so the
  result equals the single-device statistics of the concatenated valid rows. Differentiable: the
  gradient flows into `x` through both statistics.

  Args:
    x: float `[B, F]`; masked rows are ignored (even if inf/NaN).
    mask: optional 0/1 `[B]`; None means every row is valid.
    axis_name: the `shard_map` mesh axis the batch is split over, or None.

  Returns:
    `(mean [F], var [F], count [])`; with no valid row, mean 0 and var 0 (count 0).
  """
  w = _valid(mask, x.shape[0])
  valid = w[:, None] > 0
  x = jnp.where(valid, x, 0.0)
  count = _psum(jnp.sum(w), axis_name)
  n = jnp.maximum(count, 1.0)
  mean = _psum(jnp.sum(x, axis=0), axis_name) / n
  centred = jnp.where(valid, x - mean, 0.0)
  var = _psum(jnp.sum(centred * centred, axis=0), axis_name) / n
  return mean, var, count


def running_stats(state: State, config: Any = None) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The mean and variance evaluation uses (bias-corrected moving averages; see module doc).

  Args:
    state: batch-norm state from `init_state` / `apply`.
    config: optional; `config.bn_debias = False` returns TF's raw moving averages.

  Returns:
    `(mean [F], var [F])`; mean 0 and var 1 before the first update.
  """
  mean, var = state["mean"], state["var"]
  if config is not None and not _get(_critic_cfg(config), "bn_debias", True):
    return mean, var
  steps = state["steps"]
  decay = jnp.power(jnp.float32(BN_MOMENTUM), steps.astype(jnp.float32))
  corr = jnp.where(steps > 0, 1.0 - decay, 1.0)
  # ema_t = m^t * init + (1 - m) sum_s m^(t-s) stat_s, init = (0, 1); remove init and renormalise.
  mean_hat = jnp.where(steps > 0, mean / corr, 0.0)
  var_hat = jnp.where(steps > 0, (var - decay) / corr, 1.0)
  return mean_hat, jnp.maximum(var_hat, 0.0)


def _update_running(state: State, mean, var, count) -> State:
  """TF-style moving-average update (momentum 0.99); no-op when there was no valid row."""
  m = BN_MOMENTUM
  mean = jax.lax.stop_gradient(mean)
  var = jax.lax.stop_gradient(var)
  ok = count > 0
  return {"mean": jnp.where(ok, m * state["mean"] + (1.0 - m) * mean, state["mean"]),
          "var": jnp.where(ok, m * state["var"] + (1.0 - m) * var, state["var"]),
          "steps": state["steps"] + ok.astype(jnp.int32)}


def normalize_features(state: State, features: jnp.ndarray, config: Any, *, train: bool,
                       mask: jnp.ndarray | None = None,
                       axis_name: str | None = None) -> tuple[jnp.ndarray, State]:
  """The critic's input normalisation (Table 4's BN, or the authors' frozen identity).

  Args:
    state: from `init_state` / a previous call.
    features: float `[B, F]`.
    config: the root config or its `critic` block (`normalize`).
    train: batch statistics + running-stat update (True) or running statistics (False);
      ignored for `'none'`.
    mask: optional 0/1 `[B]` of valid rows; masked rows are zeroed first.
    axis_name: `shard_map` axis for device-global statistics, or None.

  Returns:
    `(normalised features [B, F], new_state)`.
  """
  cfg = _critic_cfg(config)
  x = jnp.asarray(features, jnp.float32)
  if mask is not None:
    x = jnp.where(_valid(mask, x.shape[0])[:, None] > 0, x, 0.0)
  if _normalize_mode(cfg) == "none":
    # Authors' BN frozen at the identity, always run in inference mode (notes §3, Pitfall 7).
    return x * FROZEN_BN_SCALE, state
  if train:
    mean, var, count = masked_moments(x, mask, axis_name)
    new_state = _update_running(state, mean, var, count)
  else:
    mean, var = running_stats(state, cfg)
    new_state = state
  return (x - mean) * jax.lax.rsqrt(var + BN_EPSILON), new_state


def apply(params: Params, state: State, features: jnp.ndarray, config: Any, *, train: bool,
          mask: jnp.ndarray | None = None,
          axis_name: str | None = None) -> tuple[jnp.ndarray, State]:
  """The critic omega_psi(h): normalisation, ReLU MLP, sigmoid (Table 4).

  Args:
    params: from `init`.
    state: from `init` / a previous `apply` (batch-norm running statistics; `{}` for 'none').
    features: float `[B, F]` from `critic_features`.
    config: the root config or its `critic` block.
    train: batch-norm in training mode (batch statistics of the valid rows, running statistics
      updated) or evaluation mode (running statistics). No effect for `normalize='none'`.
    mask: optional 0/1 `[B]` marking real users; padded rows neither affect the statistics nor
      receive gradient, and their predictions are meaningless.
    axis_name: the `shard_map` mesh axis over which the batch is split (statistics become
      device-global via `psum`), or None on a single device / under plain `jit`.

  Returns:
    `(prediction [B] in (0, 1), new_state)`; `new_state is state` unless batch norm trains.
  """
  h, new_state = normalize_features(state, features, config, train=train, mask=mask,
                                    axis_name=axis_name)
  return _mlp(params, h), new_state


# ---------------------------------------------------------------------------------------------
# Loss (eq. 6 + the authors' L2) and diagnostics.
# ---------------------------------------------------------------------------------------------


def l2_penalty(params: Params, config: Any, batch_size: int) -> jnp.ndarray:
  """The authors' critic regulariser: `l2 * sum(theta^2) / batch_size`, weights AND biases.

  (`l2_regularizer(1e-4)` gives `1e-4 * sum(theta^2) / 2`, multiplied by 2 and divided by the
  batch size 500 in `base_models.py:493-503`; Pitfall 8.)
  """
  cfg = _critic_cfg(config)
  sq = sum(jnp.sum(jnp.square(p)) for p in jax.tree_util.tree_leaves(params))
  return jnp.float32(_get(cfg, "l2", 0.0)) * sq / float(batch_size)


def pearson_r(a: jnp.ndarray, b: jnp.ndarray, mask: jnp.ndarray | None = None,
              axis_name: str | None = None) -> jnp.ndarray:
  """Pearson correlation of `a` and `b` over the valid rows (device-global with `axis_name`).

  Args:
    a, b: float `[B]`.
    mask: optional 0/1 `[B]`.
    axis_name: `shard_map` axis, or None.

  Returns:
    float32 scalar; 0 (not NaN) when either input has (numerically) zero variance or there is
    fewer than two valid rows. A variance below 1e-10 of the mean square counts as zero, so
    float rounding of a constant input does not produce a spurious +-1.
  """
  a = jnp.asarray(a, jnp.float32).reshape(-1)
  b = jnp.asarray(b, jnp.float32).reshape(-1)
  w = _valid(mask, a.shape[0])
  a = jnp.where(w > 0, a, 0.0)
  b = jnp.where(w > 0, b, 0.0)
  n = jnp.maximum(_psum(jnp.sum(w), axis_name), 1.0)
  ma = _psum(jnp.sum(w * a), axis_name) / n
  mb = _psum(jnp.sum(w * b), axis_name) / n
  da, db = w * (a - ma), w * (b - mb)
  cov, va, vb, sa2, sb2 = _psum(
      (jnp.sum(da * db), jnp.sum(da * da), jnp.sum(db * db), jnp.sum(w * a * a),
       jnp.sum(w * b * b)), axis_name)
  ok = (va > 1e-10 * sa2 + 1e-30) & (vb > 1e-10 * sb2 + 1e-30)
  denom = jnp.sqrt(jnp.where(ok, va * vb, 1.0))
  return jnp.where(ok, cov / denom, 0.0).astype(jnp.float32)


def loss(params: Params, state: State, features: jnp.ndarray, target: jnp.ndarray, config: Any, *,
         mask: jnp.ndarray | None, batch_size: int,
         axis_name: str | None = None) -> tuple[jnp.ndarray, tuple[State, dict]]:
  """Critic loss: eq. 6 MSE over the valid rows plus the authors' L2 (Pitfall 8).

  `mean_valid((target - critic(h))^2) + l2 * sum(theta^2) / batch_size`. The critic runs in
  training mode (`apply(train=True)`), so batch-norm statistics come from this batch and the
  running statistics are updated. Under `shard_map` (`axis_name` given) the MSE is the global
  mean (psum of squared errors / psum of valid counts), so the loss is the same replicated scalar
  on every device; with shard_map's default `check_vma=True`, `jax.grad` of it w.r.t. replicated
  params is already the global gradient on every device, and w.r.t. the local features the
  matching slice of the global feature gradient (both checked in tests/test_critic.py; no extra
  `pmean` of the gradients is needed, though a `pmean` of identical values is harmless). With
  `check_vma=False` these gradients come out WRONG (psum's transpose is then a psum again).

  Args:
    params, state: from `init`.
    features: float `[B, F]` (B per device under shard_map).
    target: float `[B]` oracle scores (`oracle_target`); gradients are stopped.
    config: the root config or its `critic` block (`l2`, `normalize`, ...).
    mask: 0/1 `[B]` of valid rows, or None for all valid.
    batch_size: the GLOBAL batch size the L2 term divides by (`config.batch_size`, authors: 500).
    axis_name: `shard_map` axis, or None.

  Returns:
    `(loss, (new_state, aux))` where aux has float32 scalars `mse`, `l2`, `pred_mean`, `pred_std`
    (population std over valid rows), `pearson_r` (prediction vs target over valid rows),
    `target_mean`, and `n_valid` (valid rows over all devices); all device-global.
  """
  pred, new_state = apply(params, state, features, config, train=True, mask=mask,
                          axis_name=axis_name)
  target = jax.lax.stop_gradient(jnp.asarray(target, jnp.float32).reshape(pred.shape))
  w = _valid(mask, pred.shape[0])
  err = jnp.where(w > 0, pred - target, 0.0)
  sse, count = _psum((jnp.sum(err * err), jnp.sum(w)), axis_name)
  n = jnp.maximum(count, 1.0)
  mse = sse / n
  reg = l2_penalty(params, config, batch_size)
  total = mse + reg

  p = jax.lax.stop_gradient(pred)
  p = jnp.where(w > 0, p, 0.0)
  t = jnp.where(w > 0, target, 0.0)
  p_sum, t_sum = _psum((jnp.sum(w * p), jnp.sum(w * t)), axis_name)
  p_mean = p_sum / n
  p_var = _psum(jnp.sum(w * jnp.square(p - p_mean)), axis_name) / n
  aux = {"mse": jax.lax.stop_gradient(mse), "l2": jax.lax.stop_gradient(reg),
         "pred_mean": p_mean, "pred_std": jnp.sqrt(p_var),
         "pearson_r": pearson_r(p, t, w, axis_name), "target_mean": t_sum / n,
         "n_valid": count}
  return total, (new_state, aux)


# ---------------------------------------------------------------------------------------------
# Oracle (training-time target).
# ---------------------------------------------------------------------------------------------


def oracle_target(logits: jnp.ndarray, seen: jnp.ndarray, unseen: jnp.ndarray,
                  config: Any) -> jnp.ndarray:
  """The oracle ranking score y the critic regresses on (eq. 6; notes §3, Pitfall 6).

  NDCG@k (or Recall@k when `config.metric == 'recall'`, Table 6) of the actor's logits with the
  seen (kept input) items set to -inf and the unseen (dropped) items as binary relevance, via
  `ract_jax.metrics`. A user with nothing dropped gets 0 (the authors' IDCG floor of 0.1).

  Args:
    logits: float `[B, M]` actor output (pre-softmax; ranking is the same).
    seen: 0/1 `[B, M]` the kept input items x * b.
    unseen: 0/1 `[B, M]` the dropped items x * (1 - b).
    config: the root config or its `critic` block (`metric`, `k`).

  Returns:
    float32 `[B]` in [0, 1], with gradients stopped.
  """
  from ract_jax import metrics  # Lazy: keeps this module importable on its own.

  cfg = _critic_cfg(config)
  metric = _get(cfg, "metric", "ndcg")
  k = int(_get(cfg, "k", 100))
  scores = jnp.where(jnp.asarray(seen) > 0, -jnp.inf, jnp.asarray(logits, jnp.float32))
  relevant = (jnp.asarray(unseen) > 0).astype(jnp.float32)
  if metric == "ndcg":
    y = metrics.ndcg_at_k(scores, relevant, k)
  elif metric == "recall":
    y = metrics.recall_at_k(scores, relevant, k)
  else:
    raise ValueError(f"critic.metric must be 'ndcg' or 'recall', got {metric!r}")
  y = jnp.where(jnp.sum(relevant, axis=-1) > 0, y, 0.0)
  return jax.lax.stop_gradient(y.astype(jnp.float32))


# ---------------------------------------------------------------------------------------------
# The naive critic (section 3: "impractical, and failed in our experiments").
# ---------------------------------------------------------------------------------------------


def naive_init(rng: jax.Array, n_items: int, hidden: int = 100) -> Params:
  """Params of the naive critic: `[pi_p, x_p]` (2M inputs) -> `hidden` ReLU -> 1 sigmoid.

  Args:
    rng: PRNG key.
    n_items: M.
    hidden: hidden width.

  Returns:
    `{'hidden_0': {'w': [2M, hidden], 'b'}, 'output': {'w': [hidden, 1], 'b'}}`, Glorot / zeros.
  """
  hidden_0, output = _glorot_layers(rng, (2 * int(n_items), int(hidden), 1))
  return {"hidden_0": hidden_0, "output": output}


def naive_apply(params: Params, pi_p: jnp.ndarray, x_p: jnp.ndarray) -> jnp.ndarray:
  """The naive critic on the concatenation `[pi_p, x_p]` (section 3).

  Args:
    params: from `naive_init`.
    pi_p: float `[B, M]` the actor's prediction (e.g. softmax probabilities).
    x_p: float `[B, M]` the user's interactions.

  Returns:
    float32 `[B]` in (0, 1).
  """
  h = jnp.concatenate([jnp.asarray(pi_p, jnp.float32), jnp.asarray(x_p, jnp.float32)], axis=-1)
  return _mlp(params, h)
