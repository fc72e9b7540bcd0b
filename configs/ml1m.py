"""MovieLens-1M from its `ratings.dat` (`UserID::MovieID::Rating::Timestamp`), ML-20M's protocol.

Raw data: https://grouplens.org/datasets/movielens/1m/ (set --config.data.raw_path). For the implicit
all-ratings version in ../shared/data use configs/ml1m_implicit.py.
"""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "ml1m")
  c = base.get_base_config()
  c.data.name = "ml1m"
  c.data.format = "ml1m"
  c.data.raw_path = "data/ml-1m/ratings.dat"
  c.data.heldout_users = 600
  c.data.rating_threshold = 3.5
  c.data.min_user_count = 5
  base.apply_variant(c, arg, "ml1m")
  if base.is_smoke(arg):
    base.smoke(c)
    c.data.name = "ml1m-smoke"
    c.data.raw_path = base.fixture("ml1m/ratings.dat")
    c.data.heldout_users = 5
  return c
