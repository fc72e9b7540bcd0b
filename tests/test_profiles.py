"""The `paper` (default) and `authors` profiles pin their keys, combine with every preset in any
order, and the mean over users counts users without held-out items as the profile says."""

import numpy as np
import pytest

from ract_jax import config_base as base
from ract_jax import metrics

AUTHORS = {"critic.normalize": "none", "actor.anneal_schedule": "steps",
           "eval.empty_users": "zero"}


def _get(c, dotted):
  for part in dotted.split("."):
    c = c[part]
  return c


def _config(arg):
  return base.apply_variant(base.get_base_config(), arg, "test")


def test_paper_is_the_default_and_sets_nothing():
  assert base.PROFILES["paper"] == {}
  default, paper = _config(""), _config("paper")
  assert default.to_dict() == paper.to_dict() and paper.profile == "paper"
  assert {k: _get(paper, k) for k in AUTHORS} == {
      "critic.normalize": "batchnorm", "actor.anneal_schedule": "epochs",
      "eval.empty_users": "skip"}


def test_authors_profile_keys():
  c = _config("authors")
  assert c.profile == "authors"
  assert {k: _get(c, k) for k in AUTHORS} == AUTHORS == base.PROFILES["authors"]
  # Everything else is the paper's.
  rest = {k: v for k, v in c.to_dict().items() if k not in ("critic", "actor", "eval", "profile")}
  assert rest == {k: v for k, v in _config("").to_dict().items() if k in rest}


@pytest.mark.parametrize("arg", ["warp,authors", "authors,warp"])
def test_authors_warp_is_their_warp_encoder_in_either_order(arg):
  c = _config(arg)
  assert (c.actor.loss, c.actor.warp_margin, c.actor.warp_rank) == ("warp", 0.0, "position")
  assert (c.actor.l2, c.actor.l2_on_biases) == (1e-5, True)
  p = _config("warp")  # The paper's eq. 9: margin 1, violation rank, no L2.
  assert (p.actor.warp_margin, p.actor.warp_rank, p.actor.l2) == (1.0, "violations", 0.0)


def test_authors_variant_actors_and_finetuning():
  g = _config("vae_gaussian,authors")
  assert (g.actor.loss, g.actor.positive_weight) == ("weighted_sq", 2.0)
  lin = _config("vae_linear,authors")
  assert (lin.actor.shape, lin.actor.loss, lin.actor.positive_weight, lin.actor.anneal_cap) == (
      "linear", "weighted_sq", 5.0, 0.05)
  ft = _config("vae_warp_ft,authors")
  assert (ft.ac.objective, ft.actor.loss, ft.actor.warp_margin, ft.actor.warp_rank,
          ft.actor.l2) == ("warp", "multinomial", 0.0, "position", 0.0)
  assert ft.critic.normalize == "none" and ft.schedule.critic_epochs == 0


def test_bad_variants_name_the_options():
  with pytest.raises(ValueError, match="two profiles"):
    _config("paper,authors")
  with pytest.raises(ValueError, match="unknown variant 'author'.*authors"):
    _config("author")


def test_empty_users_mean():
  vals, n = np.array([0.5, 0.0, 1.0]), np.array([2, 0, 3])
  skip = metrics.summarize(vals, n)
  zero = metrics.summarize(vals, n, "zero")
  assert (skip["mean"], skip["n_users"], skip["n_skipped"]) == (0.75, 2, 1)
  assert (zero["mean"], zero["n_users"], zero["n_skipped"]) == (0.5, 3, 0)
  with pytest.raises(ValueError, match="empty_users"):
    metrics.summarize(vals, n, "drop")
