"""Command line: `python -m ract_jax.main --config=configs/<name>.py --workdir=DIR [--config.k=v]`.

Trains RaCT (stage 1 actor, stage 2 critic, stage 3 actor-critic) and tests the best model by
validation. Re-running the same command on the same workdir resumes from its latest checkpoint.

Configs (files in configs/, loaded by path): default (synthetic data, no download), ml20m, netflix,
msd, ml1m, ml1m_implicit, ml100k, ml_latest_small, custom (your own delimited or adjacency file).
Variants after a colon: `smoke` (tiny model, two epochs) and an actor preset (paper Table 2):
vae, vae_gaussian, vae_beta0, vae_linear, dae_liang, dae_ract, mf, warp, lambdarank; e.g.
`--config=configs/ml1m_implicit.py:smoke,warp`. Every key and its default is documented in
ract_jax/config_base.py; override any with `--config.<block>.<key>=value`, e.g.
`--config.schedule.actor_epochs=10`. The workdir gets config.json, metrics.jsonl, results.json,
predictions_test*.tsv and model/; serve that with `python -m ract_jax.recommend --help`.
"""

import logging as pylogging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from ract_jax.config_base import ACTOR_PRESETS

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, configs/<name>.py[:variant] (names and variants above; actor "
    "presets: " + ", ".join(ACTOR_PRESETS) + "); keys in ract_jax/config_base.py.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, logs, results and the model go "
                               "(re-use it to resume).")
flags.mark_flags_as_required(["config", "workdir"])


def _unknown_key_message(argv) -> str:
  """Names the first `--config.a.b=...` override whose path is not in the loaded config."""
  import importlib.util
  spec = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")), "")
  path, _, variant = spec.partition(":")
  try:
    module_spec = importlib.util.spec_from_file_location("ract_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(variant or None)
  except Exception:  # The config file itself is the problem; absl's message will say so.
    return ""
  for arg in argv[1:]:
    if not arg.startswith("--config."):
      continue
    path = arg[len("--config."):].split("=", 1)[0].split(".")
    node = config
    for i, part in enumerate(path):
      if node is None or not hasattr(node, "keys") or part not in node.keys():
        where = "config" + "".join("." + p for p in path[:i])
        keys = sorted(node.keys()) if node is not None and hasattr(node, "keys") else []
        return (f"--config.{'.'.join(path)}: {where} has no key {part!r}. "
                f"Keys there: {', '.join(keys)}.")
      node = node[part]
  return ""


def _parse_flags(argv):
  """absl's flag parsing, with an unknown config key reported as a message, not a traceback."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"FATAL Flags parsing error: {e}", file=sys.stderr)
    sys.exit(1)
  except (AttributeError, KeyError) as e:
    print(f"FATAL Flags parsing error: {_unknown_key_message(argv) or e}", file=sys.stderr)
    sys.exit(1)


class OrbaxInfoFilter(pylogging.Filter):
  """Drops orbax's INFO records (about 40 lines per checkpoint save) below `--verbosity=1`, so
  the per-epoch lines stay readable; orbax's warnings and errors still show."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return not (record.levelno < pylogging.WARNING and "/orbax/" in record.pathname.replace(
        os.sep, "/") and logging.get_verbosity() < 1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(OrbaxInfoFilter())
  config = _CONFIG.value
  if config.distributed:
    import jax
    jax.distributed.initialize()  # SLURM / Open MPI / TPU pods: arguments from the environment.
  from ract_jax.data import DataError
  from ract_jax.train import trainer
  workdir = os.path.abspath(os.path.expanduser(_WORKDIR.value))
  try:
    trainer.train_and_evaluate(config, workdir)
  except (DataError, ValueError, trainer.NonFiniteError) as e:
    # Bad input or an impossible config: the message names the file / option; the traceback is
    # kept for --verbosity=1.
    logging.log(logging.DEBUG, "traceback:", exc_info=True)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
