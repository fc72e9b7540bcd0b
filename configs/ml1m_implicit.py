"""MovieLens-1M, all ratings as implicit feedback (../shared/data/ml-1m-implicit/interactions.txt).

Adjacency format (`user item item ...`), no threshold, H = 600; the paper's ML-20M hyper-parameters and
Table 5 schedule (150 / 50 / 50 epochs, beta_max 0.2 annealed over 100 epochs).
"""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "ml1m_implicit")
  c = base.get_base_config()
  c.data.name = "ml1m-implicit"
  c.data.format = "adjacency"
  c.data.delimiter = "space"
  c.data.raw_path = base.shared_data("ml-1m-implicit/interactions.txt")
  c.data.heldout_users = 600
  c.data.rating_threshold = None
  c.data.min_user_count = 5
  base.apply_variant(c, arg, "ml1m_implicit")
  if base.is_smoke(arg):
    base.smoke(c)
  return c
