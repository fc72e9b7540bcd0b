"""MovieLens-100K (../shared/data/ml-100k/u.data) under ML-20M's protocol, H = 100."""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "ml100k")
  c = base.get_base_config()
  c.data.name = "ml100k"
  c.data.format = "ml100k"
  c.data.raw_path = base.shared_data("ml-100k/u.data")
  c.data.heldout_users = 100
  c.data.rating_threshold = 3.5
  c.data.min_user_count = 5
  base.apply_variant(c, arg, "ml100k")
  if base.is_smoke(arg):
    base.smoke(c)
  return c
