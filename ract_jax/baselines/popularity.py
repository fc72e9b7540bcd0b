"""Item-popularity baseline: every user gets the training-set item counts as scores."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ract_jax.data.csr import CSR


def fit(train: CSR) -> np.ndarray:
  """Number of training users that interacted with each item.

  Args:
    train: training users' histories, `[n_users, M]` CSR (binary; each item once per row).

  Returns:
    float32 `[M]` counts (exact: float32 represents integers up to 2**24).
  """
  return np.bincount(np.asarray(train.indices), minlength=train.n_items).astype(np.float32)


def scores(counts, fold_in_dense) -> jnp.ndarray:
  """Popularity scores for a batch: the counts broadcast to every user.

  The caller sets fold-in items to -inf before ranking. Ties (equal counts) rank by item index
  (`lax.top_k` order).

  Args:
    counts: float32 `[M]` from `fit`.
    fold_in_dense: `[B, M]` fold-in batch; only its shape is used.

  Returns:
    float32 `[B, M]`.
  """
  counts = jnp.asarray(counts, jnp.float32)
  return jnp.broadcast_to(counts[None, :], (fold_in_dense.shape[0], counts.shape[0]))
