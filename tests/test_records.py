"""What a run tells its user: a short banner (the full config only at --verbosity=1), and an end
that names the workdir, its files and the headline with the paired interval, checked by hand."""

import json

import numpy as np
import pytest
from absl import logging

from configs import default
from ract_jax.data import processed
from ract_jax.data.protocol import Pairs
from ract_jax.device import parallel
from ract_jax.train import records


def _data():
  pairs = lambda u, s: Pairs(np.asarray(u), np.asarray(s))
  split = {"train": pairs([0, 0, 1], [0, 1, 2]), "validation_tr": pairs([2], [0]),
           "validation_te": pairs([2], [1]), "test_tr": pairs([3], [2]),
           "test_te": pairs([3], [0])}
  return processed.split_to_processed(split, ["a", "b", "c"], {"name": "tiny"})


@pytest.mark.parametrize("verbosity,full", [(0, False), (1, True)])
def test_banner_is_short_unless_verbose(tmp_path, capsys, verbosity, full):
  old = logging.get_verbosity()
  logging.set_verbosity(verbosity)
  try:
    records.Records(str(tmp_path)).banner(parallel.make_mesh(), _data(),
                                          default.get_config("smoke"), {"actor": 10, "critic": 5})
  finally:
    logging.set_verbosity(old)
  out = capsys.readouterr().out
  assert f"workdir {tmp_path} | config {tmp_path / 'config.json'}" in out
  assert "dataset tiny" in out and "schedule 2 / 1 / 1 epochs" in out and "devices" in out
  assert ("heldout_users:" in out) == full  # A key of the YAML dump.
  assert (len(out.splitlines()) > 100) == full and len(out.splitlines()) > 5


def _per_user(ndcg, n_heldout=None):
  n = len(ndcg)
  return {"uids": np.arange(n), "ndcg@100": np.asarray(ndcg, float),
          "n_heldout": np.ones(n, int) if n_heldout is None else np.asarray(n_heldout)}


def test_headline_by_hand():
  results = {"actor": {"test": {"ndcg@100": 0.4}}, "ract": {"test": {"ndcg@100": 0.45}}}
  actor = _per_user([0.2, 0.4, 0.6, 0.9], [1, 1, 1, 0])
  ract = _per_user([0.3, 0.4, 0.8, 0.1], [1, 1, 1, 0])
  line = records.headline(results, actor, ract)
  # Differences over users with held-out items: 0.1, 0.0, 0.2 -> mean 0.1, sd 0.1, se 0.1/sqrt(3).
  half = 1.96 * 0.1 / np.sqrt(3)
  assert "actor 0.4000 -> RaCT 0.4500" in line and "paired difference +0.1000" in line
  assert f"[{0.1 - half:+.4f}, {0.1 + half:+.4f}]" in line
  assert line.endswith("over 3 users (2 better, 0 worse)")
  results["ract"]["diagnostics"] = {"best_stage": "actor"}
  assert records.headline(results, actor, actor).endswith("so RaCT is that actor")
  stage1 = records.headline({"actor": {"test": {"ndcg@100": 0.4, "ndcg@100_se": 0.01}}}, actor,
                            None)
  assert stage1 == ("headline: test NDCG@100 of the actor 0.4000 (± 0.0100); stages 2-3 did not "
                    "run.")


def test_closing_names_the_workdir_its_files_and_the_headline(tmp_path, capsys):
  (tmp_path / "model").mkdir()
  (tmp_path / "results.json").write_text("{}")
  (tmp_path / "metrics.jsonl.tmp").write_text("")
  np.savez(tmp_path / "per_user_test_actor.npz", **_per_user([0.5, 0.5]))
  np.savez(tmp_path / "per_user_test_ract.npz", **_per_user([0.5, 0.7]))
  results = {"actor": {"test": {"ndcg@100": 0.5}}, "ract": {"test": {"ndcg@100": 0.6}}}
  records.Records(str(tmp_path)).closing(results)
  out = capsys.readouterr().out.splitlines()
  assert f"done: {tmp_path}" in out
  assert ("files: model/, per_user_test_actor.npz, per_user_test_ract.npz, results.json"
          in out)
  assert any("python -m ract_jax.recommend" in line for line in out)
  assert out[-1].startswith("headline: test NDCG@100 actor 0.5000 -> RaCT 0.6000: paired "
                            "difference +0.1000")
  json.dumps(results)  # Untouched, still plain.
