"""The portable model folder (`<workdir>/model/`): round trip, raw-id mapping, and every way a
workdir can lack a usable model, each with a message naming the file."""

import json
import os

import jax
import numpy as np
import pytest

from configs import default
from ract_jax import actors, model_io

N_ITEMS = 12


def _config(id_type="int", threshold=None):
  c = default.get_config("smoke")
  c.data.id_type = id_type
  c.data.rating_threshold = threshold
  return c


def _write(workdir, vocabulary=None, id_type="int", threshold=None):
  c = _config(id_type, threshold)
  params = actors.init(jax.random.PRNGKey(0), c.actor, N_ITEMS)
  vocabulary = vocabulary or [str(100 + i) for i in range(N_ITEMS)]
  info = model_io.model_info("actor", {"global_epoch": 2, "stage": "actor", "epoch": 2,
                                       "epochs": 2}, c.actor, c.data, c.eval, N_ITEMS,
                             {"ndcg@100": 0.25, "ndcg@100_se": 0.01, "n_users": 40})
  model_io.write(str(workdir), params, info, vocabulary)
  return params


def test_flatten_round_trip():
  params = {"enc0": {"w": np.ones((2, 3)), "b": np.zeros(3)}, "dec1": {"w": np.eye(2)}}
  flat = model_io.flatten(params)
  assert sorted(flat) == ["dec1/w", "enc0/b", "enc0/w"]
  back = model_io.unflatten(flat)
  assert jax.tree.all(jax.tree.map(np.array_equal, back, params))


def test_write_then_read(tmp_path):
  params = _write(tmp_path)
  assert sorted(os.listdir(tmp_path / "model")) == ["model.json", "params.npz", "vocabulary.txt"]
  model = model_io.read(str(tmp_path))
  assert model.name == "actor" and model.n_items == N_ITEMS
  assert model.vocabulary == tuple(str(100 + i) for i in range(N_ITEMS))
  for (pa, a), (pb, b) in zip(jax.tree_util.tree_leaves_with_path(params),
                              jax.tree_util.tree_leaves_with_path(model.params)):
    assert pa == pb
    np.testing.assert_array_equal(np.asarray(a), b)
  assert model.actor_config.hidden_dim == 32 and model.actor_config.kind == "multvae"
  assert model.info["preprocessing"]["id_type"] == "int"
  assert "global epoch 2" in model.describe() and "0.2500" in model.describe()
  # The model folder itself is accepted too.
  assert model_io.read(str(tmp_path / "model")).n_items == N_ITEMS


def test_item_index_compares_ids_as_the_reader_wrote_them(tmp_path):
  _write(tmp_path / "int")
  model = model_io.read(str(tmp_path / "int"))
  got = model.item_index(["100", "0101", 102, "+103", " 104 ", "99", "abc", "1e2", "+-105",
                          "1_05", "\u00b2", "9" * 30, "105"])
  assert got.tolist() == [0, 1, 2, 3, 4, -1, -1, -1, -1, -1, -1, -1, 5]
  assert model.item_index(np.array([111, 100, 7])).tolist() == [11, 0, -1]
  assert model.item_index([]).tolist() == []
  _write(tmp_path / "str", vocabulary=[f"S{i}" for i in range(N_ITEMS)], id_type="str")
  model = model_io.read(str(tmp_path / "str"))
  assert model.item_index(["S3", "s3", "S03", "S11"]).tolist() == [3, -1, -1, 11]


def _message(tmp_path, workdir):
  with pytest.raises(model_io.ModelError) as e:
    model_io.read(str(workdir))
  return str(e.value)


def test_missing_workdir(tmp_path):
  msg = _message(tmp_path, tmp_path / "nowhere")
  assert str(tmp_path / "nowhere") in msg and "no such directory" in msg


def test_workdir_without_a_finished_model(tmp_path):
  (tmp_path / "checkpoints").mkdir()
  (tmp_path / "metrics.jsonl").write_text("")
  msg = _message(tmp_path, tmp_path)
  assert "no finished model" in msg and "re-running its training command resumes it" in msg
  assert "--config.reevaluate=True" in msg
  other = tmp_path / "empty"
  other.mkdir()
  assert "not the workdir of a training run" in _message(tmp_path, other)


@pytest.mark.parametrize("damage,expect", [
    (lambda m: (m / "model.json").write_text("{not json"), "model.json"),
    (lambda m: (m / "model.json").write_text(json.dumps({"model": "actor"})), "model.json"),
    (lambda m: (m / "params.npz").write_bytes(b"PK\x03\x04 truncated"), "params.npz"),
    (lambda m: (m / "vocabulary.txt").write_text("1\n2\n"), "vocabulary.txt"),
    (lambda m: os.remove(m / "model.json"), "model.json"),
])
def test_damaged_files_are_named(tmp_path, damage, expect):
  _write(tmp_path)
  damage(tmp_path / "model")
  msg = _message(tmp_path, tmp_path)
  assert os.path.join(str(tmp_path), "model", expect) in msg


def test_parameters_that_do_not_fit_the_actor(tmp_path):
  _write(tmp_path)
  info = json.loads((tmp_path / "model" / "model.json").read_text())
  info["actor"]["hidden_dim"] = 64
  (tmp_path / "model" / "model.json").write_text(json.dumps(info))
  assert "do not fit the actor" in _message(tmp_path, tmp_path)


def test_rewrite_replaces_the_model_whole(tmp_path):
  _write(tmp_path)
  _write(tmp_path, vocabulary=[f"x{i}" for i in range(N_ITEMS)])
  assert model_io.read(str(tmp_path)).vocabulary[0] == "x0"
  assert sorted(os.listdir(tmp_path)) == ["model"]  # No scratch directory left behind.
  with pytest.raises(ValueError, match="vocabulary of 3 items"):
    _write(tmp_path, vocabulary=["a", "b", "c"])
  assert model_io.read(str(tmp_path)).vocabulary[0] == "x0"  # The old one is intact.
