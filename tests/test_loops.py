"""An epoch run as several dispatches of one compiled chunk is bit-identical to one scan over the
whole epoch (stage 1 and stage 3, with and without skipped steps at the end), compiles once, and
reports progress between chunks."""

import jax
import numpy as np
import pytest

from configs import default
from ract_jax.train import loops, records, setup, steps, trainer
from ract_jax.train import state as state_lib


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  c = default.get_config("smoke")
  c.data.processed_dir = str(tmp_path_factory.mktemp("processed") / "synthetic")
  c.baselines.names = ()
  c.batch_size = 16  # 293 training users: 19 steps per epoch.
  return setup.build(c, str(tmp_path_factory.mktemp("work")))


def test_chunk_plan():
  assert loops.chunk_plan(20, 1) == (1, 20)
  assert loops.chunk_plan(19, 3) == (3, 7)  # 21 slots: the last 2 steps are skipped.
  assert loops.chunk_plan(20, 4) == (4, 5)
  assert loops.chunk_plan(3, 8) == (3, 1)
  assert loops.chunk_plan(11, 0) == (1, 11)  # Auto: short epochs are one dispatch.
  assert loops.chunk_plan(234, 0) == (14, 17)  # ML-20M at batch 500.
  assert loops.chunk_plan(2000, 0) == (16, 125)
  with pytest.raises(ValueError, match="progress.epoch_chunks"):
    loops.chunk_plan(10, -1)


def _epochs(run, stage, chunks, n=2):
  cfg = run.config
  if stage == "actor":
    step = steps.make_actor_step(cfg.actor, run.shape, run.steps_per_epoch)
  else:
    step = steps.make_ac_step(cfg.actor, cfg.critic, cfg.ac, run.shape, run.steps_per_epoch)
  name = f"test-{stage}-{chunks}"
  program = loops.make_epoch(name, step, run.mesh, run.data.train.n_rows, cfg.batch_size, chunks)
  state, calls, all_sums = trainer.initial_state(run), [], []
  for e in range(n):
    state, sums = program(state, run.csr, state_lib.epoch_key(run.key, e),
                          lambda done, _: calls.append(done))
    all_sums.append(jax.device_get(sums))
  assert loops.traces[name] == 1
  return jax.device_get(state), all_sums, calls


@pytest.mark.parametrize("stage", ["actor", "ac"])
def test_chunked_epoch_is_bit_identical(run, stage):
  one, sums_one, calls_one = _epochs(run, stage, 1)
  three, sums_three, calls_three = _epochs(run, stage, 3)
  assert calls_one == [19, 19] and calls_three == [7, 14, 19] * 2
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(three)):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(sums_one, sums_three):
    assert {k: v.shape for k, v in a.items()} == {k: (19,) for k in a}
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])


def test_progress_lines(monkeypatch):
  lines, clock = [], iter([0.0, 40.0, 50.0, 80.0])
  monkeypatch.setattr(records, "now", lambda: next(clock))
  p = records.ChunkProgress(lines.append, "actor  epoch   1/3", n_rows=1000, steps=10,
                            batch_size=100, every=30.0)
  for done in (2, 4, 6, 8):
    p(done, np.zeros(2))
  # After chunk 2 is dispatched chunk 1 (2 steps, 200 users) is done at t=40: 5 users/s.
  assert lines == ["actor  epoch   1/3  step 2/10 (20%)  5 users/s  epoch ETA 2m40s",
                   "actor  epoch   1/3  step 6/10 (60%)  8 users/s  epoch ETA 0m53s"]
