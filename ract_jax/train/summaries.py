"""Optional TensorBoard summaries of the per-epoch records (`metrics.jsonl` rows), an extra: written
only when a writer package is installed (tensorboardX, torch's, or flax's with TensorFlow), never
required. `config.progress.tensorboard`: 'auto' (the first installed writer, else none), 'off', or
a `WRITERS` name (an error naming the option when that package is missing)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Callable

SUBDIR = "tensorboard"  # <workdir>/tensorboard/
SKIP = ("global_epoch", "epoch", "epochs")  # Row fields that are the step or its position.


def _add_scalar(module: str, cls: str = "SummaryWriter") -> Callable:
  def open_writer(logdir):
    writer = getattr(importlib.import_module(module), cls)(logdir)
    return writer.add_scalar, writer.flush, writer.close
  return open_writer


def _flax(logdir):
  writer = importlib.import_module("flax.metrics.tensorboard").SummaryWriter(logdir)
  return writer.scalar, writer.flush, writer.close


# name -> (packages it needs, open(logdir) -> (scalar(tag, value, step), flush, close)).
WRITERS = {
    "tensorboardX": (("tensorboardX",), _add_scalar("tensorboardX")),
    "torch": (("torch", "tensorboard"), _add_scalar("torch.utils.tensorboard")),
    "flax": (("flax", "tensorflow"), _flax),
}


def _available(packages) -> bool:
  """Whether every package is installed (found without importing it: no start-up cost)."""
  return all(importlib.util.find_spec(p) is not None for p in packages)


def scalars(row: dict) -> dict[str, float]:
  """The numeric fields of a metrics row as `{tag: value}`: training values under the stage's
  name (e.g. `actor/nll`), validation ones under `val/` (e.g. `val/ndcg@100`), times under
  `time/`."""
  out = {}
  for key, value in row.items():
    if key in SKIP or isinstance(value, (str, bool)) or value is None:
      continue
    if isinstance(value, dict):
      out.update({f"{key}/{k}": float(v) for k, v in value.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)})
    elif isinstance(value, (int, float)):
      prefix = "time" if key in ("seconds", "users_per_s", "compile_seconds") else row["stage"]
      out[f"{prefix}/{key}"] = float(value)
  return out


class Summaries:
  """Writes each metrics row as scalars at step `global_epoch + 1`."""

  def __init__(self, name: str, logdir: str):
    self.name, self.logdir = name, logdir
    self._scalar, self._flush, self._close = WRITERS[name][1](logdir)

  def write(self, row: dict) -> None:
    for tag, value in scalars(row).items():
      self._scalar(tag, value, int(row["global_epoch"]) + 1)
    self._flush()

  def close(self) -> None:
    self._close()


def open_summaries(progress_cfg, workdir: str) -> Summaries | None:
  """The run's summary writer per `config.progress.tensorboard`, or None.

  Raises:
    ValueError: an unknown writer name, or a named writer whose package is not installed.
  """
  choice = progress_cfg.tensorboard
  if choice == "off":
    return None
  if choice != "auto" and choice not in WRITERS:
    raise ValueError(f"config.progress.tensorboard={choice!r}: expected 'auto', 'off' or one of "
                     f"{tuple(WRITERS)}.")
  names = list(WRITERS) if choice == "auto" else [choice]
  for name in names:
    if _available(WRITERS[name][0]):
      return Summaries(name, os.path.join(workdir, SUBDIR))
  if choice != "auto":
    raise ValueError(f"config.progress.tensorboard={choice!r} needs the packages "
                     f"{WRITERS[choice][0]}, not all installed (pip install them, or use 'auto' / "
                     "'off').")
  return None
