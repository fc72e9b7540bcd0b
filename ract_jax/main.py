"""Command line: `python -m ract_jax.main --config=configs/<name>.py --workdir=DIR [--config.k=v]`.

Trains RaCT (stage 1 actor, stage 2 critic, stage 3 actor-critic) and tests the best model by
validation. Re-running the same command on the same workdir resumes from its latest checkpoint.

Configs (files in configs/, loaded by path): default (synthetic data, no download), ml20m, netflix,
msd, ml1m, ml1m_implicit, ml100k, ml_latest_small, custom (your own delimited or adjacency file).
Variants after a colon: `smoke` (tiny model, two epochs) and an actor preset (paper Table 2):
vae, vae_gaussian, vae_beta0, vae_linear, dae_liang, dae_ract, mf, warp, lambdarank (and beyond
the paper: item_item, item_item_lowrank, started from EASE); e.g.
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

from ract_jax.config_base import ACTOR_PRESETS, FINETUNE_PRESETS, PROFILES

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, configs/<name>.py[:variant] (names and variants above; actor "
    "presets: " + ", ".join(ACTOR_PRESETS) + "; Table 1's L2R fine-tunings: "
    + ", ".join(FINETUNE_PRESETS) + "; profiles: " + ", ".join(PROFILES)
    + ", e.g. :vae_warp_ft,authors, see docs/profiles.md); keys in ract_jax/config_base.py.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, logs, results and the model go "
                               "(re-use it to resume).")
flags.mark_flags_as_required(["config", "workdir"])


def _config_error(argv) -> str:
  """Loads `--config=FILE[:ARG]` once before absl does, so that a bad file, an unknown variant or an
  unknown `--config.a.b` key is reported in one line (absl would print a traceback)."""
  from ract_jax import config_base
  spec = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")), "")
  if not spec:
    return ""  # absl says --config is required.
  try:
    config = config_base.load(spec)
  except Exception as e:  # pylint: disable=broad-except  (any error of the user's config file)
    return f"--config={spec}: {e}"
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
  """absl's flag parsing, with a bad config file, variant or key reported in one line."""
  message = _config_error(argv)
  if not message:
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      message = str(e)
    except (AttributeError, KeyError, ValueError) as e:
      message = str(e)
  print(f"FATAL Flags parsing error: {message}", file=sys.stderr)
  sys.exit(1)


class OrbaxInfoFilter(pylogging.Filter):
  """Drops orbax's INFO records (about 40 lines per checkpoint save) below `--verbosity=1`, so
  the per-epoch lines stay readable; orbax's warnings and errors still show."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return not (record.levelno < pylogging.WARNING and "/orbax/" in record.pathname.replace(
        os.sep, "/") and logging.get_verbosity() < 1)


def start_cluster(cluster_cfg) -> None:
  """`jax.distributed.initialize` from `config.cluster` (unset values: from the environment, as
  on SLURM / Open MPI / TPU pods); on CPU with cross-process collectives (`cpu_collectives`)."""
  import jax
  if cluster_cfg.cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", cluster_cfg.cpu_collectives)
  given = {"coordinator_address": cluster_cfg.coordinator_address or None,
           "num_processes": cluster_cfg.num_processes or None,
           "process_id": None if cluster_cfg.process_id < 0 else cluster_cfg.process_id}
  jax.distributed.initialize(**{k: v for k, v in given.items() if v is not None},
                             initialization_timeout=int(cluster_cfg.initialization_timeout),
                             heartbeat_timeout_seconds=int(cluster_cfg.heartbeat_seconds))


def lost_peer(error: Exception) -> None:
  """On a multi-process run, a runtime error of a collective (another process died: its sockets
  closed) ends this process at once with a message, instead of JAX's shutdown barrier waiting for
  the dead process (`config.cluster.heartbeat_seconds` bounds the wait when no error surfaces)."""
  import jax
  if jax.process_count() < 2 or not isinstance(error, jax.errors.JaxRuntimeError):
    return
  first = (str(error).splitlines() or ["?"])[0]
  print(f"error: process {jax.process_index()} of {jax.process_count()}: a collective with the "
        f"other processes failed ({first}); another process of this run has probably died (see "
        "its log). The last saved state is kept: start all processes again to resume.",
        file=sys.stderr, flush=True)
  os._exit(1)  # Not sys.exit: JAX's exit hooks would wait on the dead process.


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(OrbaxInfoFilter())
  config = _CONFIG.value
  if config.distributed:
    start_cluster(config.cluster)
  from ract_jax.data import DataError
  from ract_jax.train import trainer, workdir as workdir_lib
  workdir = os.path.abspath(os.path.expanduser(_WORKDIR.value))
  try:
    trainer.train_and_evaluate(config, workdir)
  except workdir_lib.Interrupted as e:  # Pre-empted: state saved; 75 (EX_TEMPFAIL) = try again.
    print(f"interrupted: {e}", file=sys.stderr)
    sys.exit(75)
  except (DataError, ValueError, trainer.NonFiniteError) as e:
    # Bad input, an impossible config, a busy / foreign workdir, unreadable checkpoints: the message
    # names the file / option and what to do; the traceback is kept for --verbosity=1.
    logging.log(logging.DEBUG, "traceback:", exc_info=True)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  except Exception as e:  # pylint: disable=broad-except  (a failed collective: see lost_peer)
    lost_peer(e)
    raise


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
