"""Runs the smoke training on however many (fake) devices XLA_FLAGS gives, for test_parallel.py.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/parallel_run.py PROCESSED WORKDIR \
      [BATCH_SIZE [ACTOR CRITIC AC epochs]]
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from configs import default  # noqa: E402
from ract_jax.train import trainer  # noqa: E402


def main(processed, workdir, batch_size="64", actor="2", critic="1", ac="1"):
  c = default.get_config("smoke")
  c.data.processed_dir = processed
  c.baselines.names = ()
  c.batch_size = int(batch_size)
  c.schedule.actor_epochs, c.schedule.critic_epochs, c.schedule.ac_epochs = (
      int(actor), int(critic), int(ac))
  results = trainer.train_and_evaluate(c, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  print("RESULT " + json.dumps({"devices": jax.device_count(), "rows": rows,
                                "test": results.get("ract", results["actor"])["test"]}))


if __name__ == "__main__":
  main(*sys.argv[1:])
