"""MovieLens-20M (Liang et al. 2018 protocol; RaCT paper Tables 1, 3 and 5).

Raw data: `ratings.csv` from https://grouplens.org/datasets/movielens/20m/ (set --config.data.raw_path).
"""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "ml20m")
  c = base.get_base_config()
  c.data.name = "ml20m"
  c.data.format = "ml20m"
  c.data.raw_path = "data/ml-20m/ratings.csv"
  c.data.heldout_users = 10_000
  c.data.rating_threshold = 3.5
  c.data.min_item_count = 0
  c.data.min_user_count = 5
  # Table 5, ML-20M: beta_max 0.2, annealed over 100 epochs then fixed for 50; 150/50/50 epochs.
  c.actor.anneal_cap = 0.2
  c.actor.anneal_epochs = 100
  c.schedule.actor_epochs = 150
  c.schedule.critic_epochs = 50
  c.schedule.ac_epochs = 50
  base.apply_variant(c, arg, "ml20m")
  if base.is_smoke(arg):
    base.smoke(c)
    c.data.name = "ml20m-smoke"
    c.data.raw_path = base.fixture("ml20m/ratings.csv")
    c.data.heldout_users = 5
  return c
