"""The critic's inputs (eq. 5), built by one function for training and for evaluation alike.

`critic_inputs(logits, seen, unseen, loss_fn)` collects what the critic may look at for a batch of
users: in training `seen` are the kept input items x * b and `unseen` the dropped ones x * (1 - b);
at evaluation `seen` are the fold-in items and `unseen` the held-out ones. `feature_matrix(inputs,
config.critic)` turns them into the `[B, F]` matrix the critic network reads.

The features are a registry (`FEATURES`): a name and a function of `CriticInputs` returning `[B]`.
The paper's three are the counts |H1| and |H0| and the actor's loss L_E; `config.critic.use_seen` /
`use_unseen` drop a count (Figure 5's ablation). Adding a feature: one `FEATURES` entry, its config
switch in `feature_names`, and a hand-checked test.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections


class CriticInputs(NamedTuple):
  """Per-user quantities the critic's features are computed from.

  loss: float32 `[B]` the actor's per-user loss L_E on the full row `seen + unseen` (eq. 5; the NLL
    for multinomial actors). Gradients flow through it in stage 3 (eq. 7).
  n_seen: float32 `[B]` |H1|, the number of input items.
  n_unseen: float32 `[B]` |H0|, the number of items to predict.
  logits: float32 `[B, M]` the actor's scores.
  seen, unseen: float32 `[B, M]` 0/1 rows of the input items and of the items to predict.
  """

  loss: jax.Array
  n_seen: jax.Array
  n_unseen: jax.Array
  logits: jax.Array
  seen: jax.Array
  unseen: jax.Array


def critic_inputs(logits: jax.Array, seen: jax.Array, unseen: jax.Array,
                  loss: Callable[[jax.Array, jax.Array], jax.Array] | jax.Array) -> CriticInputs:
  """Builds the critic's inputs for a batch (training and evaluation use this one function).

  Args:
    logits: float `[B, M]` the actor's output.
    seen: 0/1 `[B, M]` input items (kept items in training, fold-in items at evaluation).
    unseen: 0/1 `[B, M]` items to predict (dropped items in training, held-out at evaluation).
    loss: the actor's per-user loss function `loss(logits, x) -> [B]` (`actors.per_user_loss`),
      evaluated here on the full row `seen + unseen`; or those `[B]` values already computed
      (stage 3 differentiates them as an output of the actor's forward pass).

  Returns:
    The `CriticInputs`.
  """
  seen = jnp.asarray(seen, jnp.float32)
  unseen = jnp.asarray(unseen, jnp.float32)
  values = loss(logits, seen + unseen) if callable(loss) else loss
  return CriticInputs(loss=values, n_seen=jnp.sum(seen, axis=-1),
                      n_unseen=jnp.sum(unseen, axis=-1), logits=logits, seen=seen, unseen=unseen)


def _log_softmax(i: CriticInputs) -> jax.Array:
  return jax.nn.log_softmax(i.logits, axis=-1)


def _nll_on(rows):
  """The multinomial NLL of the actor's softmax on `rows(inputs)` (`[B, M]` 0/1)."""
  return lambda i, c: -jnp.sum(rows(i) * _log_softmax(i), axis=-1)


def _entropy(i: CriticInputs, c) -> jax.Array:
  del c
  log_p = _log_softmax(i)
  return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def _top_scores(i: CriticInputs, c) -> jax.Array:
  """The k + 1 highest scores of the items that can be recommended (input items excluded, as
  evaluation ranks them), `[B, k + 1]`, k = `config.critic.k` (capped at M - 1)."""
  k = min(int(c.k) + 1, i.logits.shape[-1])
  return jax.lax.top_k(jnp.where(i.seen > 0, -jnp.inf, i.logits), k)[0]


def _margin(i: CriticInputs, c) -> jax.Array:
  top = _top_scores(i, c)  # A user with fewer than k + 1 candidates has -inf there: margin 0.
  ok = jnp.all(jnp.isfinite(top[:, -2:]), axis=-1)
  return jnp.where(ok, jnp.where(ok, top[:, -2], 0.0) - jnp.where(ok, top[:, -1], 0.0), 0.0)


def _top_std(i: CriticInputs, c) -> jax.Array:
  top = _top_scores(i, c)[:, :-1]
  ok = jnp.isfinite(top)
  top = jnp.where(ok, top, 0.0)  # Before any arithmetic: no inf (nor NaN gradients) below.
  n = jnp.maximum(jnp.sum(ok, axis=-1), 1)
  mean = jnp.sum(top, axis=-1) / n
  var = jnp.sum(jnp.where(ok, (top - mean[:, None]) ** 2, 0.0), axis=-1) / n
  return jnp.sqrt(var + 1e-12)  # The epsilon keeps the gradient finite for equal scores.


# name -> f(CriticInputs, config.critic) -> [B]. The paper's three (eq. 5) come first; the rest are
# beyond the paper (issue 14), switched on by listing them in config.critic.features.
FEATURES: dict[str, Callable[[CriticInputs, ml_collections.ConfigDict], jax.Array]] = {
    "n_seen": lambda i, c: i.n_seen,  # |H1| (eq. 5)
    "n_unseen": lambda i, c: i.n_unseen,  # |H0| (eq. 5)
    "loss": lambda i, c: i.loss,  # L_E (eq. 5)
    # The NLL split: on the input items only, and on the items to predict only (what NDCG ranks).
    "nll_seen": _nll_on(lambda i: i.seen),
    "nll_unseen": _nll_on(lambda i: i.unseen),
    "entropy": _entropy,  # of the softmax over all M items: how peaked the actor is.
    "margin": _margin,  # k-th minus (k+1)-th score among the candidates: the cut-off's stability.
    "top_std": _top_std,  # spread of the top-k candidate scores.
}
EXTRA = tuple(FEATURES)[3:]


def feature_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The configured feature columns, in order: [|H1|, |H0|, L_E] (the authors' column order), then
  `config.features` in the order listed.

  Args:
    config: `config.critic` (`use_seen`, `use_unseen`, `features`).

  Raises:
    ValueError naming `config.critic.features` for an unknown or repeated name.
  """
  names = []
  if config.use_seen:
    names.append("n_seen")
  if config.use_unseen:
    names.append("n_unseen")
  names.append("loss")
  extra = tuple(config.get("features", ()) or ())
  for name in extra:
    if name not in EXTRA or extra.count(name) > 1:
      raise ValueError(f"config.critic.features={extra}: {name!r} is unknown or repeated; "
                       f"expected distinct names of {EXTRA}.")
  return tuple(names) + extra


def n_features(config: ml_collections.ConfigDict) -> int:
  """F, the width of `feature_matrix(inputs, config)`."""
  return len(feature_names(config))


def feature_matrix(inputs: CriticInputs, config: ml_collections.ConfigDict) -> jax.Array:
  """The critic's input matrix h (eq. 5), float32 `[B, F]`, columns as `feature_names(config)`."""
  return jnp.stack([jnp.asarray(FEATURES[name](inputs, config), jnp.float32)
                    for name in feature_names(config)], axis=-1)
