"""What every actor shares: its sparse input, its output, the input normalisation and dense layers.

Parameters are plain nested dicts `{layer: {"w": [fan_in, fan_out], "b": [fan_out]}}`, float32.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

Dims = Sequence[tuple[str, int, int]]  # (layer name, fan_in, fan_out) of each dense layer.


class SparseInput(NamedTuple):
  """The actor's input for a batch, as sparse entries (see `device.batches.Entries`).

  seg, item: int32 `[cap]`; values: float32 `[cap]` (normalised, masked input values; 0 = absent);
  users: int32 `[B]` global user ids (keys the VAE's noise).
  """

  seg: jax.Array
  item: jax.Array
  values: jax.Array
  users: jax.Array


class ActorOutput(NamedTuple):
  logits: jax.Array  # float32 [B, M]
  kl: jax.Array  # float32 [B]; zeros for deterministic actors.


# `first(w) -> x @ w` for the batch's sparse input x: the first layer without a dense [B, M] input.
FirstLayer = Callable[[jax.Array], jax.Array]


def input_values(counts: jax.Array, seg: jax.Array, kept: jax.Array,
                 keep_prob: float, train: bool, norm: str = "l2") -> jax.Array:
  """The first layer's input on each entry: l2-normalised full row, masked, rescaled (eq. 2).

  With `norm='binary'` (`config.actor.input_norm`; the item-item actor) the input is the raw 0/1
  row, masked but neither normalised nor rescaled: EASE's scores x B are defined on it, and a row
  with a share `keep_prob` of its items kept is what evaluation's fold-in row looks like.

  Args:
    counts: int32 `[B]` items per user (the full row: its l2 norm is sqrt(count)).
    seg: int32 `[cap]` row of each entry.
    kept: bool `[cap]` the mask b in training (real entries only), all real entries at evaluation.
    keep_prob: the Bernoulli keep probability (dropout divides by it in training).
    train: training (mask and rescale) or evaluation (all entries, no rescale).
    norm: 'l2' (eq. 2) or 'binary'.

  Returns:
    float32 `[cap]`.
  """
  if norm == "binary":
    return kept.astype(jnp.float32)
  if norm != "l2":
    raise ValueError(f"config.actor.input_norm={norm!r}: expected one of ('l2', 'binary').")
  norm = jax.lax.rsqrt(jnp.maximum(counts, 1).astype(jnp.float32))[seg]
  scale = norm / keep_prob if train else norm
  return jnp.where(kept, scale, 0.0)


def init_dense(rng: jax.Array, dims: Dims) -> dict:
  """Dense layers: Glorot-uniform weights, biases truncated normal with std 0.001 (Table 4).

  Args:
    rng: a PRNG key; layer i draws from `fold_in(rng, i)`.
    dims: (name, fan_in, fan_out) per layer.

  Returns:
    `{name: {"w": float32 [fan_in, fan_out], "b": float32 [fan_out]}}`.
  """
  params = {}
  glorot = jax.nn.initializers.glorot_uniform()
  for i, (name, fan_in, fan_out) in enumerate(dims):
    kw, kb = jax.random.split(jax.random.fold_in(rng, i))
    params[name] = {
        "w": glorot(kw, (fan_in, fan_out), jnp.float32),
        "b": 0.001 * jax.random.truncated_normal(kb, -2.0, 2.0, (fan_out,), jnp.float32),
    }
  return params


@jax.custom_vjp
def bf16_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """`x @ w` with both operands rounded to bfloat16 and float32 accumulation, backward included
  (dx = g @ w.T and dw = x.T @ g with g rounded to bfloat16 too): the usual mixed-precision
  training matmul, as explicit casts so that it rounds the same way on every backend (CPU too)."""
  return _bf16_dot(x, w)


def _bf16_dot(a, b):
  return jnp.matmul(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16),
                    preferred_element_type=jnp.float32)


def _bf16_fwd(x, w):
  return _bf16_dot(x, w), (x.astype(jnp.bfloat16), w.astype(jnp.bfloat16))


def _bf16_bwd(res, g):
  x, w = res
  return _bf16_dot(g, w.T).astype(g.dtype), _bf16_dot(x.T, g).astype(g.dtype)


bf16_matmul.defvjp(_bf16_fwd, _bf16_bwd)

# config.actor.matmul_precision -> `matmul(x [B, K], w [K, N]) -> float32 [B, N]`. 'default' is
# the backend's own choice for float32 (full float32 on CPU; TF32 on recent NVIDIA GPUs, bfloat16
# passes on TPU): the behaviour before the key existed. 'highest' forces true float32 everywhere,
# 'tf32' asks for TensorFloat-32 (bfloat16_3x on TPU, float32 on CPU).
MATMULS = {
    "default": jnp.matmul,
    "highest": lambda x, w: jnp.matmul(x, w, precision=jax.lax.Precision.HIGHEST),
    "tf32": lambda x, w: jnp.matmul(x, w, precision=jax.lax.Precision.HIGH),
}
# Precisions measured and refused (issue 13: bf16 must not lose more than 0.002 test NDCG@100).
NOT_OFFERED = {
    "bf16": "'bf16' (bf16_matmul: bfloat16 operands, float32 sums) is not offered: stage 1 on "
            "ml-1m-implicit lost 0.0033 test NDCG@100 against float32 (0.4489 vs 0.4522, paired "
            "s.e. 0.0021; the limit is 0.002). Use 'default', 'highest' or 'tf32'.",
}


def matmul_fn(precision: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """The matmul of `config.actor.matmul_precision` (see `MATMULS`; `NOT_OFFERED` says why not)."""
  if precision in NOT_OFFERED:
    raise ValueError(f"config.actor.matmul_precision={precision!r}: {NOT_OFFERED[precision]}")
  return choose(MATMULS, precision, "config.actor.matmul_precision")


def dense(layer: dict, x: jax.Array, precision: str = "default") -> jax.Array:
  """`x @ w + b` with the matmul of `precision` (`MATMULS`); x `[B, fan_in]` -> `[B, fan_out]`."""
  return matmul_fn(precision)(x, layer["w"]) + layer["b"]


def choose(table: dict, key: str, option: str):
  """`table[key]`, or a ValueError naming the config option and the choices."""
  if key not in table:
    raise ValueError(f"{option}={key!r}: expected one of {tuple(table)}.")
  return table[key]
