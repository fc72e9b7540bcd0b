"""Million Song Dataset taste profile (Liang et al. 2018 protocol; RaCT paper Tables 1, 3 and 5).

Raw data: `train_triplets.txt` (user, song, play count; tab-separated) from the Echo Nest Taste
Profile subset of the MSD; set --config.data.raw_path.
"""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "msd")
  c = base.get_base_config()
  c.data.name = "msd"
  c.data.format = "msd"
  c.data.raw_path = "data/msd/train_triplets.txt"
  c.data.heldout_users = 50_000
  c.data.rating_threshold = None  # Play counts: every triplet is kept.
  c.data.min_item_count = 200  # Songs with >= 200 users first ...
  c.data.min_user_count = 20  # ... then users with >= 20 songs.
  c.data.id_type = "str"
  # Table 5, MSD: beta_max 0.1 annealed over all 75 actor epochs; 75/50/25 epochs.
  c.actor.anneal_cap = 0.1
  c.actor.anneal_epochs = 75
  c.schedule.actor_epochs = 75
  c.schedule.critic_epochs = 50
  c.schedule.ac_epochs = 25
  c.baselines.names = ("popularity", "ease")
  base.apply_variant(c, arg, "msd")
  if base.is_smoke(arg):
    base.smoke(c)
    c.data.name = "msd-smoke"
    c.data.raw_path = base.fixture("msd/train_triplets.txt")
    c.data.heldout_users = 5
    c.data.min_item_count = 3
    c.data.min_user_count = 5
  return c
