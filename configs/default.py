"""The embedded default: synthetic data (no download), sized so all three stages run in a few
minutes on 2 CPU cores. Paper architecture (Table 4) and ML-20M hyper-parameters, shorter schedule."""

from ract_jax import config_base as base


def get_config(arg=None):
  base.check_arg(arg, "default")
  c = base.get_base_config()
  c.data.name = "synthetic"
  c.data.format = "synthetic"
  c.data.heldout_users = 300
  c.data.rating_threshold = None
  c.data.min_user_count = 5
  c.actor.anneal_epochs = 20
  c.schedule.actor_epochs = 30
  c.schedule.critic_epochs = 10
  c.schedule.ac_epochs = 10
  base.apply_variant(c, arg, "default")
  if base.is_smoke(arg):
    base.smoke(c)
    c.data.name = "synthetic-smoke"
    c.data.synthetic.n_users = 400
    c.data.synthetic.n_items = 200
    c.data.synthetic.mean_items_per_user = 20.0
    c.data.heldout_users = 40
  return c
