"""Command line: `python -m ract_jax.main --config=configs/<name>.py --workdir=DIR [--config.k=v]`.

Intentionally short: flags, logging, then `train_and_evaluate`. Re-running the same command on the
same workdir resumes from its latest checkpoint.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/<name>.py[:smoke]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, logs and results go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
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
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
