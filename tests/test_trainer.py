"""The training engine end to end on the synthetic smoke config: records, no host copies inside an
epoch, one trace per stage, kill-and-resume equality (inside stage 1 and inside stage 3), the
non-finite stop, and evaluation against a numpy reference."""

import json
import os

import jax
import numpy as np
import pytest

from configs import default
from ract_jax import evaluate
from ract_jax.baselines import popularity
from ract_jax.train import checkpoint, loops, setup, state as state_lib, trainer


def _config(processed_dir, **schedule):
  c = default.get_config("smoke")
  c.data.processed_dir = str(processed_dir)
  c.baselines.names = ()
  c.schedule.actor_epochs = schedule.get("actor", 2)
  c.schedule.critic_epochs = schedule.get("critic", 1)
  c.schedule.ac_epochs = schedule.get("ac", 2)
  return c


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
  return tmp_path_factory.mktemp("processed") / "synthetic"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, processed):
  workdir = tmp_path_factory.mktemp("full")
  results = trainer.train_and_evaluate(_config(processed), str(workdir))
  return workdir, results


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_records_and_outputs(full_run):
  workdir, results = full_run
  assert set(results) >= {"actor", "ract"}
  for name in ("config.json", "metrics.jsonl", "results.json", "predictions_test.tsv",
               "predictions_test_actor.tsv", "per_user_test_actor.npz", "per_user_test_ract.npz"):
    assert os.path.exists(os.path.join(workdir, name)), name
  rows = _rows(workdir)
  assert [r["stage"] for r in rows] == ["actor", "actor", "critic", "ac", "ac"]
  assert [r["global_epoch"] for r in rows] == list(range(5))
  for r in rows:
    assert np.isfinite(r["val"]["ndcg@100"]) and r["users_per_s"] > 0
  assert {"nll", "kl", "beta"} <= set(rows[0]) and {"mse", "critic_std", "critic_r"} <= set(rows[2])
  test = results["ract"]["test"]
  assert 0 < test["ndcg@100"] <= 1 and test["n_users"] > 0
  # The exported top-100 lists have one line per test user, in rank order, no fold-in item.
  with open(os.path.join(workdir, "predictions_test.tsv")) as f:
    lines = f.read().splitlines()
  assert len(lines) == test["n_users"] + test["n_skipped"]


def _same_outputs(a, b, results_a, results_b):
  for model in ("actor", "ract"):
    assert results_a[model]["test"] == results_b[model]["test"], model
  assert [r["val"] for r in _rows(a)] == [r["val"] for r in _rows(b)]
  for name in ("predictions_test.tsv", "predictions_test_actor.tsv"):
    with open(os.path.join(a, name)) as fa, open(os.path.join(b, name)) as fb:
      assert fa.read() == fb.read(), name


def test_resume_after_a_save_inside_stage_1_and_stage_3_gives_identical_results(
    full_run, processed, tmp_path, monkeypatch):
  """Saving after every epoch (`every_minutes=0`), killed right after a save."""
  workdir, results = full_run
  for stop_after in (0, 3):  # Global epoch 0: inside stage 1; 3: first of two stage-3 epochs.
    resumed = tmp_path / f"stop{stop_after}"
    original_save = checkpoint.Checkpoints.save

    def save_then_die(self, epoch, payload, stop_after=stop_after):
      original_save(self, epoch, payload)
      if epoch == stop_after:
        self.wait()
        raise KeyboardInterrupt("simulated kill")

    c = _config(processed)
    c.checkpoint.every_minutes = 0.0
    monkeypatch.setattr(checkpoint.Checkpoints, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
      trainer.train_and_evaluate(c, str(resumed))
    monkeypatch.setattr(checkpoint.Checkpoints, "save", original_save)
    _same_outputs(resumed, workdir, trainer.train_and_evaluate(c, str(resumed)), results)


def test_resume_replays_the_epochs_after_the_last_stage_end(full_run, processed, tmp_path,
                                                            monkeypatch):
  """Default policy: full states at stage ends only; killed in the middle of stage 3 (no save
  since stage 2 ended), the run replays stage 3's first epoch and ends identical."""
  workdir, results = full_run
  original_epoch = trainer.train_epoch

  def epoch_then_die(run, stage, epoch, state, progress):
    state = original_epoch(run, stage, epoch, state, progress)
    if epoch == 3:
      raise KeyboardInterrupt("simulated kill")
    return state

  monkeypatch.setattr(trainer, "train_epoch", epoch_then_die)
  with pytest.raises(KeyboardInterrupt):
    trainer.train_and_evaluate(_config(processed), str(tmp_path))
  monkeypatch.setattr(trainer, "train_epoch", original_epoch)
  assert [r["global_epoch"] for r in _rows(tmp_path)] == [0, 1, 2, 3]
  again = trainer.train_and_evaluate(_config(processed), str(tmp_path))
  _same_outputs(tmp_path, workdir, again, results)


def test_epoch_has_no_host_transfer_and_compiles_once(processed, tmp_path):
  run = setup.build(_config(processed), str(tmp_path))
  state = trainer.initial_state(run)
  keys = [state_lib.epoch_key(run.key, e) for e in range(3)]
  fn = trainer.epoch_program(run, "actor")
  before = loops.traces["actor"]
  with jax.transfer_guard("disallow"):
    for key in keys:
      state, sums = fn(state, run.csr, key)
    jax.block_until_ready(sums)
  assert loops.traces["actor"] - before == 1


def test_non_finite_loss_stops_with_stage_epoch_and_step(processed, tmp_path):
  c = _config(processed, actor=3, critic=0, ac=0)
  c.actor.learning_rate = 1e30
  with pytest.raises(trainer.NonFiniteError,
                     match=r"stage 'actor', epoch 1/3, step \d+/.*no checkpoint was saved before"):
    trainer.train_and_evaluate(c, str(tmp_path))


def test_evaluation_matches_numpy_reference(processed, tmp_path):
  run = setup.build(_config(processed), str(tmp_path))
  counts = popularity.fit(run.data.train)
  per_user = run.test.run(lambda p, e, fold: popularity.scores(p, fold), counts)
  split = run.data.test
  fold, held = split.fold_in.to_dense(), split.held_out.to_dense()
  for u in range(split.n_users):
    scores = np.where(fold[u] > 0, -np.inf, np.asarray(counts, np.float64))
    order = np.argsort(-scores, kind="stable")[:100]
    n = int(held[u].sum())
    dcg = np.sum(held[u, order] / np.log2(np.arange(2, len(order) + 2)))
    idcg = np.sum(1.0 / np.log2(np.arange(2, min(n, 100) + 2)))
    want = dcg / idcg if n else 0.0
    np.testing.assert_allclose(per_user["ndcg@100"][u], want, atol=1e-5)
    np.testing.assert_array_equal(per_user["top"][u], order)
  summary = evaluate.summarize(per_user)
  assert summary["n_users"] + summary["n_skipped"] == split.n_users
