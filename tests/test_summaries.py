"""TensorBoard summaries are an optional extra: written through whichever writer package is
installed (a fake tensorboardX here), none when none is, an error naming the option when a named
one is missing."""

import importlib.machinery
import sys
import types

import ml_collections
import pytest

from ract_jax.train import records, summaries


def _cfg(choice):
  return ml_collections.ConfigDict({"tensorboard": choice})


@pytest.fixture
def fake_tensorboardx(monkeypatch):
  calls = []

  class SummaryWriter:
    def __init__(self, logdir):
      calls.append(("open", logdir))

    def add_scalar(self, tag, value, step):
      calls.append((tag, value, step))

    def flush(self):
      pass

    def close(self):
      pass

  module = types.ModuleType("tensorboardX")
  module.__spec__ = importlib.machinery.ModuleSpec("tensorboardX", None)
  module.SummaryWriter = SummaryWriter
  monkeypatch.setitem(sys.modules, "tensorboardX", module)
  return calls


ROW = {"global_epoch": 4, "stage": "critic", "epoch": 1, "epochs": 2, "mse": 0.25, "nll": 100.0,
       "seconds": 2.0, "users_per_s": 50.0, "val": {"ndcg@100": 0.5, "n_users": 40},
       "best_val_ndcg@100": 0.5}


def test_rows_become_scalars(tmp_path, fake_tensorboardx):
  rec = records.Records(str(tmp_path))
  rec.summaries = summaries.open_summaries(_cfg("auto"), str(tmp_path))
  assert rec.summaries.name == "tensorboardX"
  rec.append_metrics(ROW)
  assert fake_tensorboardx[0] == ("open", str(tmp_path / "tensorboard"))
  assert set(fake_tensorboardx[1:]) == {
      ("critic/mse", 0.25, 5), ("critic/nll", 100.0, 5), ("time/seconds", 2.0, 5),
      ("time/users_per_s", 50.0, 5), ("val/ndcg@100", 0.5, 5), ("val/n_users", 40.0, 5),
      ("critic/best_val_ndcg@100", 0.5, 5)}


def test_no_writer_installed(monkeypatch, tmp_path):
  monkeypatch.setattr(summaries, "_available", lambda packages: False)
  assert summaries.open_summaries(_cfg("auto"), str(tmp_path)) is None
  assert summaries.open_summaries(_cfg("off"), str(tmp_path)) is None
  with pytest.raises(ValueError, match=r"config.progress.tensorboard='torch' needs"):
    summaries.open_summaries(_cfg("torch"), str(tmp_path))
  with pytest.raises(ValueError, match="expected 'auto', 'off'"):
    summaries.open_summaries(_cfg("tb"), str(tmp_path))
