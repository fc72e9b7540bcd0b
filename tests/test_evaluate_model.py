"""Evaluating a saved model on held-out users in raw ids: on a stage-1-only `:smoke` run, the test
users' fold-in and held-out parts written as raw files give back `results.json`'s test metrics;
bad input ends in one clear line."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from configs import default
from ract_jax import evaluate_model, histories, model_io
from ract_jax.data import load_processed
from ract_jax.train import trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  base = tmp_path_factory.mktemp("evaluate_model")
  c = default.get_config("smoke")
  c.data.processed_dir = str(base / "processed")
  c.baselines.names = ()
  c.schedule.critic_epochs = c.schedule.ac_epochs = 0  # Stage 1 only: the actor is the model.
  results = trainer.train_and_evaluate(c, str(base / "run"))
  data = load_processed(c.data.processed_dir)
  uid, sid = np.asarray(data.unique_uid, object), np.asarray(data.unique_sid, object)
  files = {}
  for part in ("test_tr", "test_te"):
    t = pd.read_csv(os.path.join(c.data.processed_dir, f"{part}.csv"))
    files[part] = base / f"{part}.tsv"
    pd.DataFrame({"user": uid[t["uid"]], "item": sid[t["sid"]]}).to_csv(files[part], sep="\t",
                                                                       index=False)
  return base / "run", results, files


def test_stage_1_only_run_writes_the_actor_as_its_model(run):
  workdir, results, _ = run
  model = model_io.read(str(workdir))
  assert model.name == "actor" and model.info["selected"]["stage"] == "actor"
  assert model.info["test"]["ndcg@100"] == results["actor"]["test"]["ndcg@100"]
  with open(workdir / "predictions_test_raw.tsv") as a, open(
      workdir / "predictions_test_actor_raw.tsv") as b:
    assert a.read() == b.read()


def test_raw_test_users_give_back_the_trainings_test_metrics(run, tmp_path, capsys):
  workdir, results, files = run
  out = tmp_path / "summary.json"
  summary = evaluate_model.main([f"--workdir={workdir}", f"--fold_in={files['test_tr']}",
                                 f"--held_out={files['test_te']}", f"--output={out}"])
  want = results["actor"]["test"]
  assert summary["n_users"] == want["n_users"] and summary["n_skipped"] == want["n_skipped"]
  for name in want:
    if "@" in name:
      assert summary[name] == pytest.approx(want[name], abs=1e-6), name
  assert json.loads(out.read_text())["ndcg@100"] == summary["ndcg@100"]
  printed = capsys.readouterr().out
  assert f"ndcg@100   {want['ndcg@100']:.4f}" in printed


def test_users_only_held_out_and_unknown_items(run, tmp_path):
  workdir, _, files = run
  fold = pd.read_csv(files["test_tr"], sep="\t", dtype=str)
  held = pd.read_csv(files["test_te"], sep="\t", dtype=str)
  first = fold["user"].iloc[0]
  fold = fold[fold["user"] != first]  # That user keeps only held-out items: an empty fold-in.
  held = pd.concat([held, pd.DataFrame({"user": ["x"], "item": ["not-an-item"]})])
  fold.to_csv(tmp_path / "f.tsv", sep="\t", index=False)
  held.to_csv(tmp_path / "h.tsv", sep="\t", index=False)
  model = model_io.read(str(workdir))
  parts = [histories.read_tsv(str(tmp_path / n), model) for n in ("f.tsv", "h.tsv")]
  split, users = evaluate_model.held_out_split(*parts)
  assert parts[1].n_unknown == 1 and users[-2:] == [first, "x"]  # Held-out-only users last.
  assert split.fold_in.row_lengths()[users.index(first)] == 0
  assert split.held_out.row_lengths()[users.index("x")] == 0  # Its only item is unknown.
  per_user = evaluate_model.evaluate_saved(model, split)
  assert per_user["n_heldout"][users.index("x")] == 0  # Skipped in the means, as in training.


def test_bad_input_is_one_clear_line(run, tmp_path, capsys):
  workdir, _, files = run
  bad = tmp_path / "bad.tsv"
  bad.write_text("user\titem\nu\t1\nu\t2\textra\textra\n")
  for args, expect in (
      ([f"--workdir={tmp_path}", f"--fold_in={files['test_tr']}",
        f"--held_out={files['test_te']}"], "no finished model"),
      ([f"--workdir={workdir}", f"--fold_in={files['test_tr']}", f"--held_out={bad}"],
       f"{bad}:3: malformed line"),
  ):
    with pytest.raises(SystemExit) as e:
      evaluate_model.main(args)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 1 and err.startswith("error: ") and expect in err
