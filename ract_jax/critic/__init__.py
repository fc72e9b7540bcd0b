"""The critic of RaCT (section 3, eq. 5-7; Table 4): it learns a user's ranking score from features.

  features.py   CriticInputs, critic_inputs(...) (one builder for training and evaluation), FEATURES
  network.py    init / predict: feature normalisation, the MLP, the naive critic
  objective.py  oracle_target (eq. 6's y) and loss (eq. 6 + L2)

Everything is a pure function of plain dicts of arrays, jittable, usable under `jax.shard_map`.
"""

from ract_jax.critic.features import (FEATURES, CriticInputs, critic_inputs, feature_names,
                                      feature_matrix, n_features)
from ract_jax.critic.network import init, predict
from ract_jax.critic.objective import l2_penalty, loss, oracle_target

__all__ = ["FEATURES", "CriticInputs", "critic_inputs", "feature_names", "feature_matrix", "init",
           "l2_penalty", "loss", "n_features", "oracle_target", "predict"]
