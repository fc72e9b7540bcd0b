"""The critic network (Table 4): feature normalisation, a ReLU MLP, a sigmoid; and the naive critic.

Parameters: `{'hidden_0': {'w', 'b'}, ..., 'hidden_{L-1}': {...}, 'output': {'w', 'b'}}`, with
`w [fan_in, fan_out]`, `b [fan_out]`, float32. Normalisation state for `normalize='batchnorm'`:
`{'mean': [F], 'var': [F], 'steps': int32 []}`; `{}` for `normalize='none'`.

Normalisation (`config.critic.normalize`):
  * 'batchnorm' (default; Table 4, Appendix E: "Batch Normalization is used to normalize the input
    features, because the magnitude of the inputs (NLL) change as training progresses"): no learnable
    scale or offset. Training mode normalises with the statistics of the batch's valid rows
    (device-global under `shard_map`, gradients flowing through them) and updates moving averages
    (momentum 0.99, eps 1e-3); evaluation mode uses the moving averages, bias-corrected for their
    (0, 1) initialisation as Adam does, so that a few steps per epoch on small data still evaluate
    with the data's statistics (`bn_debias=False`: the raw moving averages). Before any update the
    evaluation statistics are mean 0, variance 1.
  * 'none': the features scaled by 1 / sqrt(1 + eps), i.e. a batch norm frozen at its initial
    statistics (what the authors' code ran; see docs/authors_code.md).
Variances are the biased batch variance, computed in two passes (mean, then centred squares): the
NLL feature is in the thousands and E[x^2] - E[x]^2 loses float32 precision.

Padded rows (`mask == 0`, the partial last batch) have their features replaced by 0 first: they
never affect statistics, losses or gradients; their predictions are meaningless.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections

from ract_jax.critic import features as features_lib
from ract_jax.critic.features import CriticInputs

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
FROZEN_BN_SCALE = 1.0 / math.sqrt(1.0 + BN_EPSILON)  # normalize='none': x / sqrt(1.001).
NORMALIZE = ("batchnorm", "none")


def _psum(x, axis_name):
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def valid_weights(mask, batch: int) -> jnp.ndarray:
  """Float32 `[B]` 1/0 validity weights (all ones when `mask` is None)."""
  if mask is None:
    return jnp.ones((batch,), jnp.float32)
  return (jnp.asarray(mask).reshape(batch) > 0).astype(jnp.float32)


def glorot_layers(rng, dims: tuple[int, ...]) -> list[dict]:
  """Dense layers `dims[i] -> dims[i+1]`: Glorot-uniform weights, zero biases.

  All weights come from ONE uniform draw sliced per layer (the same distribution; one PRNG kernel to
  compile per architecture instead of one per layer shape).
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


def mlp(params: dict, h: jnp.ndarray) -> jnp.ndarray:
  """ReLU hidden layers `hidden_0..hidden_{L-1}`, then `output` and a sigmoid; returns `[B]`."""
  n_hidden = sum(1 for name in params if name.startswith("hidden_"))
  for i in range(n_hidden):
    layer = params[f"hidden_{i}"]
    h = jax.nn.relu(h @ layer["w"] + layer["b"])
  out = h @ params["output"]["w"] + params["output"]["b"]
  return jax.nn.sigmoid(out[..., 0])


# ---- Feature normalisation. ----------------------------------------------------------------------


def init_norm_state(config: ml_collections.ConfigDict, n_features: int) -> dict:
  """`{'mean': zeros [F], 'var': ones [F], 'steps': 0}` for 'batchnorm', `{}` for 'none'."""
  if _normalize_mode(config) == "none":
    return {}
  return {"mean": jnp.zeros((n_features,), jnp.float32),
          "var": jnp.ones((n_features,), jnp.float32),
          "steps": jnp.zeros((), jnp.int32)}


def _normalize_mode(config) -> str:
  if config.normalize not in NORMALIZE:
    raise ValueError(f"config.critic.normalize={config.normalize!r}: expected one of {NORMALIZE}.")
  return config.normalize


def masked_moments(x: jnp.ndarray, mask=None, axis_name=None):
  """Per-feature mean and biased variance over the valid rows (device-global with `axis_name`).

  Args:
    x: float `[B, F]`; masked rows are ignored (even if inf/NaN).
    mask: optional 0/1 `[B]`.
    axis_name: the `shard_map` axis the batch is split over, or None.

  Returns:
    `(mean [F], var [F], count [])`; with no valid row, mean 0 and var 0.
  """
  w = valid_weights(mask, x.shape[0])
  valid = w[:, None] > 0
  x = jnp.where(valid, x, 0.0)
  count = _psum(jnp.sum(w), axis_name)
  n = jnp.maximum(count, 1.0)
  mean = _psum(jnp.sum(x, axis=0), axis_name) / n
  centred = jnp.where(valid, x - mean, 0.0)
  var = _psum(jnp.sum(centred * centred, axis=0), axis_name) / n
  return mean, var, count


def running_stats(state: dict, config: ml_collections.ConfigDict):
  """The mean and variance evaluation uses: bias-corrected moving averages (see module doc)."""
  mean, var = state["mean"], state["var"]
  if not config.bn_debias:
    return mean, var
  steps = state["steps"]
  decay = jnp.power(jnp.float32(BN_MOMENTUM), steps.astype(jnp.float32))
  corr = jnp.where(steps > 0, 1.0 - decay, 1.0)
  # ema_t = m^t * init + (1 - m) sum_s m^(t-s) stat_s with init = (0, 1): remove init, renormalise.
  mean_hat = jnp.where(steps > 0, mean / corr, 0.0)
  var_hat = jnp.where(steps > 0, (var - decay) / corr, 1.0)
  return mean_hat, jnp.maximum(var_hat, 0.0)


def _update_running(state: dict, mean, var, count) -> dict:
  m = BN_MOMENTUM
  mean, var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var)
  ok = count > 0  # A batch with no valid row leaves the statistics unchanged.
  return {"mean": jnp.where(ok, m * state["mean"] + (1.0 - m) * mean, state["mean"]),
          "var": jnp.where(ok, m * state["var"] + (1.0 - m) * var, state["var"]),
          "steps": state["steps"] + ok.astype(jnp.int32)}


def normalize(state: dict, x: jnp.ndarray, config: ml_collections.ConfigDict, *, train: bool,
              mask=None, axis_name=None):
  """The critic's input normalisation; returns `(normalised [B, F], new_state)`.

  Args:
    state: from `init_norm_state` or a previous call.
    x: float `[B, F]` features.
    config: `config.critic`.
    train: batch statistics and a moving-average update, or the moving averages.
    mask: optional 0/1 `[B]` of valid rows.
    axis_name: `shard_map` axis for device-global statistics, or None.
  """
  x = jnp.asarray(x, jnp.float32)
  if mask is not None:
    x = jnp.where(valid_weights(mask, x.shape[0])[:, None] > 0, x, 0.0)
  if _normalize_mode(config) == "none":
    return x * FROZEN_BN_SCALE, state
  if train:
    mean, var, count = masked_moments(x, mask, axis_name)
    new_state = _update_running(state, mean, var, count)
  else:
    mean, var = running_stats(state, config)
    new_state = state
  return (x - mean) * jax.lax.rsqrt(var + BN_EPSILON), new_state


# ---- The two critics: a registry of (init, predict). -------------------------------------------


def _init_features(rng, config, n_items):
  del n_items
  f = features_lib.n_features(config)
  layers = glorot_layers(rng, (f,) + tuple(int(d) for d in config.hidden_dims) + (1,))
  params = {f"hidden_{i}": layer for i, layer in enumerate(layers[:-1])}
  params["output"] = layers[-1]
  return params, init_norm_state(config, f)


def _predict_features(params, state, inputs, config, *, train, mask, axis_name):
  h, state = normalize(state, features_lib.feature_matrix(inputs, config), config, train=train,
                       mask=mask, axis_name=axis_name)
  return mlp(params, h), state


def _init_naive(rng, config, n_items):
  hidden_0, output = glorot_layers(rng, (2 * int(n_items), int(config.naive_hidden), 1))
  return {"hidden_0": hidden_0, "output": output}, {}


def _predict_naive(params, state, inputs, config, *, train, mask, axis_name):
  """Section 3's naive critic on `[pi_p, x_p]`: the actor's probabilities outside the input items
  and the items to predict (the paper reports it failed; kept for comparison)."""
  del config, train, mask, axis_name
  pi_p = jax.nn.softmax(inputs.logits, axis=-1) * (1.0 - inputs.seen)
  return mlp(params, jnp.concatenate([pi_p, inputs.unseen], axis=-1)), state


KINDS = {"features": (_init_features, _predict_features), "naive": (_init_naive, _predict_naive)}


def _kind(config):
  if config.kind not in KINDS:
    raise ValueError(f"config.critic.kind={config.kind!r}: expected one of {tuple(KINDS)}.")
  return KINDS[config.kind]


def init(rng: jax.Array, config: ml_collections.ConfigDict, n_items: int) -> tuple[dict, dict]:
  """Initial critic parameters and normalisation state.

  'features' (eq. 5): F -> 100 ReLU -> 100 ReLU -> 10 ReLU -> 1 sigmoid (Table 4), Glorot-uniform
  weights, zero biases. 'naive' (section 3): 2M -> `naive_hidden` ReLU -> 1 sigmoid.

  Args:
    rng: PRNG key.
    config: `config.critic`.
    n_items: M (the naive critic's input width).

  Returns:
    `(params, norm_state)`.
  """
  return _kind(config)[0](rng, config, n_items)


def predict(params: dict, norm_state: dict, inputs: CriticInputs,
            config: ml_collections.ConfigDict, *, train: bool, mask=None, axis_name=None):
  """The critic's estimate of each user's metric, omega_psi(h) (eq. 5-7).

  Args:
    params, norm_state: from `init` (or training).
    inputs: from `features.critic_inputs`.
    config: `config.critic`.
    train: batch-norm in training mode (batch statistics, moving averages updated) or evaluation.
    mask: optional 0/1 `[B]` of real users.
    axis_name: the `shard_map` axis of the batch, or None.

  Returns:
    `(prediction [B] in (0, 1), new_norm_state)`.
  """
  return _kind(config)[1](params, norm_state, inputs, config, train=train, mask=mask,
                          axis_name=axis_name)
