"""Prepare a dataset from the command line and print its statistics.

  python -m ract_jax.data.prepare --config=configs/ml20m.py --config.data.raw_path=/data/ml-20m

Reads the raw files named by `config.data`, applies the Liang et al. protocol and writes the
processed directory (or finds it in the cache), then prints where it is and users / items /
interactions per split. Bad or missing input ends the program with a message, not a traceback.
"""

from __future__ import annotations

import sys

from ract_jax.data.errors import DataError
from ract_jax.data.store import describe, load_dataset  # noqa: F401  (describe re-exported)

__all__ = ["describe", "main"]


def main(argv) -> None:
  """absl entry point: prepare + load + print statistics; DataError -> message and exit(1)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise SystemExit(f"unexpected arguments: {argv[1:]}")
  config = flags.FLAGS.config
  if config is None:
    raise SystemExit("--config=configs/<name>.py is required.")
  try:
    data = load_dataset(config.data, log=print)
  except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(f"processed directory: {data.path}")
  print(describe(data))


def _run() -> None:
  from absl import app  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/ml20m.py[:smoke].",
                                  lock_config=True)
  app.run(main)


if __name__ == "__main__":
  _run()
