"""The critic's features beyond the paper (issue 14), each checked by hand on a tiny batch: the NLL
split into input / to-predict items, the softmax entropy, the top-k margin and spread; the config
switch (off by default, order kept, unknown names refused) and finite gradients."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ract_jax import critic
from ract_jax import config_base as base


def _cfg(features=(), k=2):
  return ml_collections.ConfigDict(dict(use_seen=True, use_unseen=True, features=features, k=k))


LOGITS = np.array([[0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0, 1.0]], np.float32)
SEEN = np.array([[0, 0, 0, 1, 0], [1, 0, 0, 0, 0]], np.float32)
UNSEEN = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0]], np.float32)


def _inputs():
  return critic.critic_inputs(jnp.asarray(LOGITS), SEEN, UNSEEN, jnp.array([7.0, 8.0]))


def _by_hand():
  log_z0 = math.log(sum(math.exp(v) for v in range(5)))
  p0 = [math.exp(v - log_z0) for v in range(5)]
  return {
      "nll_seen": [log_z0 - 3.0, math.log(5.0)],
      "nll_unseen": [(log_z0 - 0.0) + (log_z0 - 2.0), math.log(5.0)],
      "entropy": [-sum(p * math.log(p) for p in p0), math.log(5.0)],
      # Candidates (input items excluded): user 0 scores 4, 2, 1, 0 -> top-3 = 4, 2, 1; user 1 all 1.
      "margin": [2.0 - 1.0, 0.0],
      "top_std": [1.0, 0.0],  # std of (4, 2) and of (1, 1).
  }


def test_default_is_the_papers_three_and_base_config_has_the_switch():
  assert base.get_base_config().critic.features == ()
  assert critic.feature_names(_cfg()) == ("n_seen", "n_unseen", "loss")


@pytest.mark.parametrize("name", list(_by_hand()))
def test_each_feature_by_hand(name):
  cfg = _cfg((name,))
  f = np.asarray(critic.feature_matrix(_inputs(), cfg))
  assert critic.feature_names(cfg) == ("n_seen", "n_unseen", "loss", name)
  assert f.shape == (2, 4) and critic.n_features(cfg) == 4
  np.testing.assert_array_equal(f[:, :3], [[1, 2, 7], [1, 1, 8]])
  np.testing.assert_allclose(f[:, 3], _by_hand()[name], rtol=1e-5, atol=2e-6)


def test_order_follows_the_list():
  cfg = _cfg(("margin", "nll_unseen"))
  f = np.asarray(critic.feature_matrix(_inputs(), cfg))
  np.testing.assert_allclose(f[:, 3:], np.stack([_by_hand()["margin"], _by_hand()["nll_unseen"]], 1),
                             rtol=1e-5, atol=1e-6)


def test_margin_with_too_few_candidates_is_zero():
  cfg = _cfg(("margin", "top_std"), k=4)  # 5 items, one seen: 4 candidates < k + 1.
  f = np.asarray(critic.feature_matrix(_inputs(), cfg))
  np.testing.assert_array_equal(f[:, 3], [0.0, 0.0])
  np.testing.assert_allclose(f[0, 4], np.std([4.0, 2.0, 1.0, 0.0]), rtol=1e-5)


@pytest.mark.parametrize("bad", [("nope",), ("margin", "margin"), ("loss",)])
def test_unknown_or_repeated_names_are_refused(bad):
  with pytest.raises(ValueError, match="config.critic.features"):
    critic.feature_names(_cfg(bad))


def test_gradients_are_finite_with_masked_and_tied_scores():
  cfg = _cfg(tuple(_by_hand()), k=4)

  def total(logits):
    inputs = critic.critic_inputs(logits, SEEN, UNSEEN, jnp.array([7.0, 8.0]))
    return jnp.sum(critic.feature_matrix(inputs, cfg))

  g = np.asarray(jax.grad(total)(jnp.asarray(LOGITS)))
  assert np.all(np.isfinite(g))
