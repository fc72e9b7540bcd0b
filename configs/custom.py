"""A user's own data, in the generic delimited or adjacency format; everything from the command line.

  python -m ract_jax.main --config=configs/custom.py --workdir=W \
    --config.data.format=delimited --config.data.raw_path=my.tsv --config.data.delimiter=tab \
    --config.data.header=True --config.data.rating_col=2 --config.data.rating_threshold=3.5 \
    --config.data.min_user_count=5 --config.data.heldout_users=1000
"""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "custom")
  c = base.get_base_config()
  c.data.name = "custom"
  c.data.format = "delimited"  # delimited | adjacency
  c.data.raw_path = ""
  c.data.heldout_users = 1000
  c.data.rating_threshold = None
  base.apply_variant(c, arg, "custom")
  if base.is_smoke(arg):
    base.smoke(c)
    c.data.name = "custom-smoke"
    c.data.raw_path = base.fixture("delimited/interactions.tsv")
    c.data.delimiter = "tab"
    c.data.header = True
    c.data.heldout_users = 5
  return c
