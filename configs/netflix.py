"""Netflix Prize (Liang et al. 2018 protocol; RaCT paper Tables 1, 3 and 5).

Raw data: the Netflix Prize `training_set/` folder of `mv_*.txt` files, or Kaggle's
`combined_data_{1..4}.txt` (a folder holding them); set --config.data.raw_path.
"""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "netflix")
  c = base.get_base_config()
  c.data.name = "netflix"
  c.data.format = "netflix"
  c.data.raw_path = "data/netflix"
  c.data.heldout_users = 40_000
  c.data.rating_threshold = 3.5
  c.data.min_item_count = 0
  c.data.min_user_count = 5
  # Table 5, Netflix: beta_max 0.2 annealed over all 75 actor epochs; 75/50/25 epochs.
  c.actor.anneal_cap = 0.2
  c.actor.anneal_epochs = 75
  c.schedule.actor_epochs = 75
  c.schedule.critic_epochs = 50
  c.schedule.ac_epochs = 25
  base.apply_variant(c, arg, "netflix")
  if base.is_smoke(arg):
    base.smoke(c)
    c.data.name = "netflix-smoke"
    c.data.raw_path = base.fixture("netflix/training_set")
    c.data.heldout_users = 5
  return c
