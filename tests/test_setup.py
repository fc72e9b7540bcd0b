"""Stage 2's minimum number of critic steps (`schedule.min_critic_steps`) and the WEAK CRITIC check
after it (`critic.min_train_r`, `critic.stop_if_weak`)."""

import types

import pytest

from ract_jax import config_base as base
from ract_jax.train import final, setup


def _schedule(critic_epochs, min_steps):
  c = base.get_base_config().schedule
  c.critic_epochs, c.min_critic_steps = critic_epochs, min_steps
  return c


def test_min_critic_steps_raises_stage_2_epochs():
  assert setup.critic_epochs(_schedule(50, 0), 3) == 50
  assert setup.critic_epochs(_schedule(50, 1000), 3) == 334  # ceil(1000 / 3)
  assert setup.critic_epochs(_schedule(50, 100), 11) == 50  # Already more than 100 steps.
  assert setup.critic_epochs(_schedule(0, 1000), 3) == 0  # No stage 2 stays none.
  s = setup.Schedule.from_config(_schedule(50, 1000), pretrained=True, steps_per_epoch=3)
  assert s.lengths == (0, 334, 50)


class _Records:
  def __init__(self, r):
    self.rows, self.warnings = [{"global_epoch": 1, "stage": "critic", "critic_r": r}], []

  def read_metrics(self):
    return self.rows

  def warn(self, msg):
    self.warnings.append(msg)


def _run(r, stop=False, min_r=0.3):
  c = base.get_base_config()
  c.critic.min_train_r, c.critic.stop_if_weak = min_r, stop
  return types.SimpleNamespace(config=c, schedule=setup.Schedule((1, 1, 1)), records=_Records(r),
                               steps_per_epoch=3,
                               checkpoints=types.SimpleNamespace(wait=lambda: None, directory="ck"))


def test_weak_critic_warns_or_stops_naming_the_option():
  run = _run(0.1)
  final.check_critic(run)
  assert len(run.records.warnings) == 1 and "min_critic_steps" in run.records.warnings[0]
  with pytest.raises(final.WeakCriticError, match="stop_if_weak"):
    final.check_critic(_run(0.1, stop=True))
  ok = _run(0.5, stop=True)
  final.check_critic(ok)  # A trained critic: silent.
  assert not ok.records.warnings
  off = _run(0.1, stop=True, min_r=0.0)
  final.check_critic(off)
