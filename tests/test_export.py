"""The exported scoring function: serialized, loaded back with jax and numpy only, on CPU, its
scores equal to the Recommender's (the evaluation's scoring) for any batch size."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import default
from ract_jax import actors, export, model_io
from ract_jax.recommend import Recommender

N_ITEMS = 50

# The loader of export.py's docstring, run in a fresh interpreter that never imports ract_jax.
LOADER = """
import sys, jax, numpy as np
out = sys.argv[1]
exp = jax.export.deserialize(open(out + "/scores.jax_exported", "rb").read())
vocab = open(out + "/vocabulary.txt", encoding="utf-8").read().splitlines()
x = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(exp.call(x)))
assert not any(m == "ract_jax" or m.startswith("ract_jax.") for m in sys.modules), "imported"
print(len(vocab), exp.platforms)
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  path = tmp_path_factory.mktemp("export")
  c = default.get_config("smoke")
  c.data.id_type = "str"  # Item ids 'i0', 'i1', ...
  params = actors.init(jax.random.PRNGKey(3), c.actor, N_ITEMS)
  # Non-zero biases everywhere, so that the empty input's scores are not trivially flat.
  params = jax.tree.map(lambda a: a + 0.05 * np.sin(np.arange(a.size).reshape(a.shape)), params)
  info = model_io.model_info("ract", {"global_epoch": 4, "stage": "ac", "epoch": 1, "epochs": 1},
                             c.actor, c.data, c.eval, N_ITEMS, {"ndcg@100": 0.3})
  model_io.write(str(path), params, info, [f"i{k}" for k in range(N_ITEMS)])
  return path


def _histories(n_users, seed=0):
  rng = np.random.default_rng(seed)
  out = {f"u{u}": [f"i{k}" for k in rng.choice(N_ITEMS, rng.integers(0, 12), replace=False)]
         for u in range(n_users)}
  out["u0"] = []  # The empty input.
  return out


def _dense(histories, vocabulary):
  col = {v: i for i, v in enumerate(vocabulary)}
  x = np.zeros((len(histories), len(vocabulary)), np.float32)
  for r, items in enumerate(histories.values()):
    x[r, [col[i] for i in items]] = 1
  return x


def test_round_trip_on_cpu_with_jax_and_numpy_only(workdir, tmp_path):
  out = export.write_export(str(workdir), str(tmp_path / "exported"), platforms=["cpu"])
  assert sorted(os.listdir(out)) == ["export.json", "scores.jax_exported", "vocabulary.txt"]
  info = json.loads(open(os.path.join(out, "export.json")).read())
  assert info["platforms"] == ["cpu"] and info["model"]["model"] == "ract"
  rec = Recommender.from_workdir(str(workdir))
  for n_users in (1, 7):  # One artifact, any batch size.
    hist = _histories(n_users, seed=n_users)
    want, vocab = rec.scores(hist)
    x = _dense(hist, vocab)
    np.save(tmp_path / "x.npy", x)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", LOADER, out, str(tmp_path / "x.npy"),
                           str(tmp_path / "s.npy")], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] == str(N_ITEMS)
    got = np.load(tmp_path / "s.npy")
    assert got.shape == (n_users, N_ITEMS)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.ptp(got[0]) > 0  # The empty history's scores: the network's output for 0 input.


def test_in_process_call_matches_for_a_larger_batch(workdir):
  model = model_io.read(str(workdir))
  exported = jax.export.deserialize(export.export_model(model, ["cpu"]).serialize())
  hist = _histories(40, seed=5)
  want, vocab = Recommender(model).scores(hist)
  np.testing.assert_allclose(np.asarray(exported.call(_dense(hist, vocab))), want, rtol=1e-5,
                             atol=1e-5)


def test_cli_without_a_model_is_one_line(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    export.main([f"--workdir={tmp_path}"])
  assert e.value.code == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "no finished model" in err and "\n" not in err
