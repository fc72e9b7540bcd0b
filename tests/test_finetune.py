"""Table 1's L2R rows (`:vae_warp_ft`, `:vae_lambdarank_ft`): stage 1 Mult-VAE, then stage 3 with the
actor on the L2R loss and no critic, selected among the fine-tuning epochs only; and model selection
on the critic's metric when it is Recall (Table 6)."""

import json
import os

import jax
import numpy as np
import pytest

from configs import default
from ract_jax.train import setup, state as state_lib, steps, trainer


def _config(processed_dir, variant="smoke,vae_warp_ft", ac_epochs=2):
  c = default.get_config(variant)
  c.data.processed_dir = str(processed_dir)
  c.baselines.names = ()
  c.schedule.actor_epochs = 2
  c.schedule.ac_epochs = ac_epochs
  return c


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
  return tmp_path_factory.mktemp("processed") / "synthetic"


def test_presets_set_the_finetuning_stage():
  for name, loss, epochs in (("vae_warp_ft", "warp", 50), ("vae_lambdarank_ft", "lambdarank", 25)):
    c = default.get_config(name)
    assert (c.ac.objective, c.ac.actor_learning_rate) == (loss, 1e-3)
    assert (c.schedule.critic_epochs, c.schedule.ac_epochs) == (0, epochs)
    assert (c.actor.kind, c.actor.loss) == ("multvae", "multinomial")  # Stage 1 is Mult-VAE.


def test_finetune_step_trains_the_actor_on_the_loss_and_not_the_critic(processed, tmp_path):
  run = setup.build(_config(processed), str(tmp_path))
  s0 = trainer.initial_state(run)
  s1, sums = trainer.epoch_program(run, "ac")(s0, run.csr, state_lib.epoch_key(run.key, 0))
  assert set(sums) == {"loss", "users"} and np.all(np.asarray(sums["loss"]) > 0)
  changed = lambda a, b: any(not np.array_equal(x, y)  # noqa: E731
                             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  s0 = trainer.initial_state(run)  # s0 was donated.
  assert changed(s0.actor, s1.actor) and changed(s0.ac_opt, s1.ac_opt)
  assert not changed(s0.critic, s1.critic) and not changed(s0.critic_opt, s1.critic_opt)
  assert steps.finetune_loss_config(run.config.actor, "warp").loss == "warp"


def test_finetune_run_selects_among_its_own_epochs(processed, tmp_path):
  c = _config(processed)
  c.schedule.actor_epochs = 3
  results = trainer.train_and_evaluate(c, str(tmp_path))
  rows = _rows(tmp_path)
  assert [r["stage"] for r in rows] == ["actor"] * 3 + ["ac"] * 2
  assert "loss" in rows[-1] and "critic_r" not in rows[-1]["val"]
  assert set(results) >= {"actor", "ft"} and "ract" not in results
  # Selected among the fine-tuning epochs only, even if a stage-1 epoch scored higher.
  ft_rows = rows[3:]
  best = max(ft_rows, key=lambda r: r["val"]["ndcg@100"])
  assert results["ft"]["best_global_epoch"] == best["global_epoch"] + 1
  assert rows[-1]["best_val_ndcg@100"] == best["val"]["ndcg@100"]
  assert results["ft"]["test"]["ndcg@100"] > 0


def test_finetune_refuses_a_critic_stage(processed):
  from ract_jax.train.validate import check_config
  c = _config(processed)
  c.schedule.critic_epochs = 1
  with pytest.raises(ValueError, match="critic_epochs=0"):
    check_config(c)


def test_selection_on_recall_when_the_critic_is_a_recall_critic(processed, tmp_path):
  c = _config(processed, variant="smoke", ac_epochs=2)
  c.schedule.critic_epochs = 1
  c.critic.metric = "recall"
  results = trainer.train_and_evaluate(c, str(tmp_path))
  rows = _rows(tmp_path)
  best = max(rows, key=lambda r: r["val"]["recall@100"])  # Ties keep the earliest (max does too).
  assert rows[-1]["best_val_recall@100"] == best["val"]["recall@100"]
  assert results["ract"]["diagnostics"]["best_global_epoch"] == best["global_epoch"] + 1
  assert results["ract"]["validation"]["recall@100"] == best["val"]["recall@100"]
  # The critic diagnostics come from the last trained critic, whichever epoch was selected.
  assert results["ract"]["diagnostics"]["critic"] == "the last trained critic (global epoch 5)"


def test_resume_restores_the_selection_among_the_finetuning_epochs(tmp_path):
  from ract_jax.train import records, validate
  ft, ract = default.get_config("vae_warp_ft"), default.get_config("")
  assert validate.selection_start(ft, 3, 4) == 3 and validate.selection_start(ft, 3, 2) == 0
  assert validate.selection_start(ract, 3, 4) == 0
  rec = records.Records(str(tmp_path))
  for g, v in enumerate([0.40, 0.45, 0.44, 0.30, 0.35, 0.33]):
    rec.append_metrics({"global_epoch": g, "val": {"ndcg@100": v}})
  assert rec.truncate_metrics_after(4, "ndcg@100", since=3)[0] == 0.35
  assert rec.truncate_metrics_after(4, "ndcg@100")[0] == 0.45


def test_stage1_only_run_leaves_actor_best_for_a_finetuning(processed, tmp_path):
  c = _config(processed, variant="smoke")
  c.schedule.actor_epochs, c.schedule.critic_epochs, c.schedule.ac_epochs = 1, 0, 0
  trainer.train_and_evaluate(c, str(tmp_path / "actor"))
  assert os.path.isdir(tmp_path / "actor" / "actor_best")
  ft = _config(processed, ac_epochs=1)
  ft.pretrained_actor = str(tmp_path / "actor")
  results = trainer.train_and_evaluate(ft, str(tmp_path / "ft"))
  assert [r["stage"] for r in _rows(tmp_path / "ft")] == ["ac"]
  assert results["ft"]["best_global_epoch"] == 1
