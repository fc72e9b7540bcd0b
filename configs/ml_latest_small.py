"""MovieLens latest-small (../shared/data/ml-latest-small/ratings.csv) under ML-20M's protocol, H = 50.

A development sample in ML-20M's exact raw format; GroupLens asks that it not be used for published
benchmark results.
"""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "ml_latest_small")
  c = base.get_base_config()
  c.data.name = "ml-latest-small"
  c.data.format = "ml20m"
  c.data.raw_path = base.shared_data("ml-latest-small/ratings.csv")
  c.data.heldout_users = 50
  c.data.rating_threshold = 3.5
  c.data.min_user_count = 5
  base.apply_variant(c, arg, "ml_latest_small")
  if base.is_smoke(arg):
    base.smoke(c)
  return c
