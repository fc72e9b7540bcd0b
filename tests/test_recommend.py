"""Recommending with a trained model, on the synthetic `:smoke` run: the test users' fold-in
histories in raw ids give back `predictions_test.tsv` in raw ids (ties aside) from a copy of the
workdir with the data cache empty and the processed data gone; a workdir stopped after stage 1
serves its pre-trained actor; one compile per padded shape; bad input ends in one clear line."""

import logging
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest

from configs import default
from ract_jax import recommend
from ract_jax.data import load_processed
from ract_jax.recommend import Recommender
from ract_jax.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(processed, **schedule):
  c = default.get_config("smoke")
  c.data.processed_dir = str(processed)
  c.baselines.names = ()
  c.schedule.actor_epochs = schedule.get("actor", 2)
  c.schedule.critic_epochs = schedule.get("critic", 1)
  c.schedule.ac_epochs = schedule.get("ac", 1)
  return c


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  base = tmp_path_factory.mktemp("recommend")
  processed, workdir = base / "processed" / "synthetic", base / "run"
  results = trainer.train_and_evaluate(_config(processed), str(workdir))
  data = load_processed(str(processed))
  uid, sid = np.asarray(data.unique_uid, object), np.asarray(data.unique_sid, object)
  fold = pd.read_csv(processed / "test_tr.csv")
  histories = {}
  for u, s in zip(uid[fold["uid"]], sid[fold["sid"]]):
    histories.setdefault(u, []).append(s)
  return types.SimpleNamespace(base=base, processed=processed, workdir=workdir, results=results,
                               data=data, histories=histories)


def _expected(workdir, name, data):
  """`predictions_<name>.tsv` (Liang ids) mapped to raw ids: {raw user: [raw items]}."""
  uid, sid = np.asarray(data.unique_uid, object), np.asarray(data.unique_sid, object)
  out = {}
  with open(os.path.join(workdir, f"predictions_{name}.tsv")) as f:
    for line in f:
      user, items = line.rstrip("\n").split("\t")
      out[uid[int(user)]] = sid[[int(i) for i in items.split(",")]].tolist()
  return out


def _read_lists(path):
  with open(path) as f:
    return {u: items.split(",") for u, items in (line.rstrip("\n").split("\t") for line in f)}


def _same_ties_aside(got, want, rec, histories):
  """Every user's list equals the expected one, except where two items' scores tie (1e-6)."""
  assert list(got) == list(want)
  scores, vocab = rec.scores({u: histories.get(u, []) for u in want})
  col = {v: i for i, v in enumerate(vocab)}
  differing = 0
  for row, user in enumerate(want):
    assert len(got[user]) == len(want[user]), user
    for a, b in zip(got[user], want[user]):
      if a != b:
        differing += 1
        assert abs(scores[row, col[a]] - scores[row, col[b]]) <= 1e-6, (user, a, b)
  return differing


def test_raw_predictions_file_is_the_liang_one_mapped(run):
  want = _expected(run.workdir, "test", run.data)
  assert _read_lists(run.workdir / "predictions_test_raw.tsv") == want
  assert _read_lists(run.workdir / "predictions_test_actor_raw.tsv") == _expected(
      run.workdir, "test_actor", run.data)
  assert len(want) == run.data.test.n_users


def test_a_copied_workdir_reproduces_the_test_predictions_without_the_data(run, tmp_path,
                                                                          monkeypatch):
  copy = tmp_path / "copied_run"
  shutil.copytree(run.workdir, copy)
  with open(tmp_path / "fold_in.tsv", "w") as f:
    f.write("user\titem\n")
    for user, items in run.histories.items():
      f.writelines(f"{user}\t{item}\n" for item in items)
  want = _expected(run.workdir, "test", run.data)
  hidden = run.processed.parent / "hidden"
  os.rename(run.processed, hidden)  # Nothing can read the processed data meanwhile.
  try:
    (tmp_path / "empty_cache").mkdir()
    env = dict(os.environ, JAX_PLATFORMS="cpu", RACT_JAX_CACHE=str(tmp_path / "empty_cache"))
    out = tmp_path / "out.tsv"
    proc = subprocess.run([sys.executable, "-m", "ract_jax.recommend", f"--workdir={copy}",
                           f"--input={tmp_path / 'fold_in.tsv'}", "--k=100", f"--output={out}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model 'ract'" in proc.stderr
    monkeypatch.setenv("RACT_JAX_CACHE", str(tmp_path / "empty_cache"))
    rec = Recommender.from_workdir(str(copy))
    api = rec.recommend({u: run.histories.get(u, []) for u in want}, k=100)
  finally:
    os.rename(hidden, run.processed)
  assert os.listdir(tmp_path / "empty_cache") == []
  # Users without fold-in rows (none in the smoke data) would be missing from the CLI's input.
  assert set(want) == set(run.histories)
  cli = _read_lists(out)
  _same_ties_aside({u: cli[u] for u in want}, want, rec, run.histories)
  _same_ties_aside(api, want, rec, run.histories)
  assert rec.model_name == "ract" and rec.last_unknown == 0


def test_a_workdir_stopped_after_stage_1_serves_the_pre_trained_actor(run, tmp_path, monkeypatch,
                                                                      caplog):
  original = trainer.train_epoch

  def die_in_stage_2(run_, stage, *args, **kwargs):
    if stage == "critic":  # After the hand-over, before stage 2's first epoch ends.
      raise KeyboardInterrupt("simulated kill")
    return original(run_, stage, *args, **kwargs)

  monkeypatch.setattr(trainer, "train_epoch", die_in_stage_2)
  with pytest.raises(KeyboardInterrupt):
    trainer.train_and_evaluate(_config(run.processed), str(tmp_path / "stopped"))
  with caplog.at_level(logging.INFO, logger="ract_jax.recommend"):
    rec = Recommender.from_workdir(str(tmp_path / "stopped"))
  assert rec.model_name == "actor" and "model 'actor'" in rec.description
  assert any("loaded model 'actor'" in r.getMessage() for r in caplog.records)
  want = _expected(tmp_path / "stopped", "test_actor", run.data)
  _same_ties_aside(rec.recommend({u: run.histories[u] for u in want}), want, rec, run.histories)


def test_one_compile_per_padded_shape(run):
  rec = Recommender.from_workdir(str(run.workdir))
  users = list(run.histories)
  rec.recommend({u: run.histories[u] for u in users[:5]}, k=10)
  assert rec.traces == 1
  rec.recommend({u: run.histories[u] for u in users[5:14]}, k=10)  # Other users, same bucket.
  rec.recommend({"new": ["1", "2"]}, k=10)  # Batch size 1: a new shape.
  rec.recommend({"other": ["3"]}, k=10)
  assert rec.traces == 2
  rec.recommend({u: run.histories[u] for u in users[:5]}, k=20)  # Another k: another program.
  assert rec.traces == 3


def test_unknown_items_empty_histories_and_seen_items(run, caplog):
  rec = Recommender.from_workdir(str(run.workdir))
  user = next(iter(run.histories))
  seen = run.histories[user]
  with caplog.at_level(logging.WARNING, logger="ract_jax.recommend"):
    top = rec.recommend({user: seen + ["no-such-item", "-1"], "new": []}, k=50)
  assert rec.last_unknown == 2
  assert any("2 interactions with items the model does not know" in r.getMessage()
             for r in caplog.records)
  assert top[user] == rec.recommend({user: seen}, k=50)[user]
  assert not set(top[user]) & set(seen) and len(top["new"]) == 50
  # An empty history gets the model's output for the empty input: the top of its scores.
  scores, vocab = rec.scores({"new": [], "also new": []})
  np.testing.assert_array_equal(scores[0], scores[1])
  assert top["new"] == [vocab[i] for i in np.argsort(-scores[0], kind="stable")[:50]]
  with_seen = rec.recommend({user: seen}, k=rec.model.n_items, exclude_seen=False)[user]
  assert set(seen) <= set(with_seen)
  everything_seen = rec.recommend({"all": list(vocab[:-3])}, k=10)["all"]
  assert sorted(everything_seen) == sorted(vocab[-3:])  # Fewer than k: only unseen items.


@pytest.mark.parametrize("k", [0, -1, 10**6, 2.5, True])
def test_bad_k(run, k):
  rec = Recommender.from_workdir(str(run.workdir))
  with pytest.raises(ValueError, match="k="):
    rec.recommend({"u": []}, k=k)


def _cli(capsys, *args):
  with pytest.raises(SystemExit) as e:
    recommend.main(list(args))
  err = capsys.readouterr().err.strip().splitlines()
  return e.value.code, err[-1] if err else ""


def test_cli_bad_input_is_one_clear_line(run, tmp_path, capsys):
  good = tmp_path / "in.tsv"
  good.write_text("u\t1\n")
  out = f"--output={tmp_path / 'out.tsv'}"
  code, err = _cli(capsys, f"--workdir={tmp_path / 'nowhere'}", f"--input={good}", out)
  assert code == 1 and err.startswith("error: ") and "nowhere: no such directory" in err
  (tmp_path / "empty_workdir").mkdir()
  code, err = _cli(capsys, f"--workdir={tmp_path / 'empty_workdir'}", f"--input={good}", out)
  assert code == 1 and "no finished model" in err
  bad = tmp_path / "bad.tsv"
  bad.write_text("user\titem\nu\t1\nu\t2\t3\t4\n")
  code, err = _cli(capsys, f"--workdir={run.workdir}", f"--input={bad}", out)
  assert code == 1 and f"{bad}:3: malformed line" in err and "user<TAB>item" in err
  code, err = _cli(capsys, f"--workdir={run.workdir}", f"--input={tmp_path / 'none.tsv'}", out)
  assert code == 1 and "none.tsv: cannot read the input file" in err
  code, err = _cli(capsys, f"--workdir={run.workdir}", f"--input={good}", "--k=0", out)
  assert code == 1 and "k=0" in err
  code, err = _cli(capsys, f"--workdir={run.workdir}", f"--input={good}",
                   f"--output={tmp_path / 'no' / 'dir.tsv'}")
  assert code == 1 and "cannot write the output" in err
  assert not (tmp_path / "out.tsv").exists()


def test_cli_malformed_line_in_a_real_process_has_no_traceback(run, tmp_path):
  bad = tmp_path / "bad.tsv"
  bad.write_text("u\t1\nu\n")
  proc = subprocess.run([sys.executable, "-m", "ract_jax.recommend", f"--workdir={run.workdir}",
                         f"--input={bad}", f"--output={tmp_path / 'out.tsv'}"], cwd=ROOT,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and f"{bad}:2: malformed line" in last
