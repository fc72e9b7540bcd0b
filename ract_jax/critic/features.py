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


FEATURES: dict[str, Callable[[CriticInputs], jax.Array]] = {
    "n_seen": lambda i: i.n_seen,  # |H1| (eq. 5)
    "n_unseen": lambda i: i.n_unseen,  # |H0| (eq. 5)
    "loss": lambda i: i.loss,  # L_E (eq. 5)
}


def feature_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The configured feature columns, in order: [|H1|, |H0|, L_E] (the authors' column order).

  Args:
    config: `config.critic` (`use_seen`, `use_unseen`).
  """
  names = []
  if config.use_seen:
    names.append("n_seen")
  if config.use_unseen:
    names.append("n_unseen")
  names.append("loss")
  return tuple(names)


def n_features(config: ml_collections.ConfigDict) -> int:
  """F, the width of `feature_matrix(inputs, config)`."""
  return len(feature_names(config))


def feature_matrix(inputs: CriticInputs, config: ml_collections.ConfigDict) -> jax.Array:
  """The critic's input matrix h (eq. 5), float32 `[B, F]`, columns as `feature_names(config)`."""
  return jnp.stack([jnp.asarray(FEATURES[name](inputs), jnp.float32)
                    for name in feature_names(config)], axis=-1)
