"""One stage-1 step and one stage-3 step of every actor preset on the (fake) device mesh, for
test_actor_presets.py. Prints one JSON line per preset."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from ract_jax import config_base as base  # noqa: E402
from ract_jax.data.csr import CSR  # noqa: E402
from ract_jax.device import batches, parallel  # noqa: E402
from ract_jax.train import state as state_lib, steps  # noqa: E402


def main():
  rng = np.random.default_rng(0)
  m, n_users = 60, 16
  rows = [rng.choice(m, size=rng.integers(5, 20), replace=False) for _ in range(n_users)]
  csr = CSR(np.concatenate([[0], np.cumsum([len(r) for r in rows])]),
            np.concatenate(rows).astype(np.int32), m)
  mesh = parallel.make_mesh()
  dev = batches.to_device_csr(csr, parallel.replicated(mesh))
  users = jnp.arange(8, dtype=jnp.int32)
  for preset in sorted(base.ACTOR_PRESETS):
    c = base.smoke(base.get_base_config())
    base.apply_variant(c, preset, "test")
    c.batch_size = 8
    c.actor.learning_rate, c.ac.actor_learning_rate = 1e-2, 1e-2
    shape = steps.BatchShape(n_items=m, cap=batches.entry_capacity(csr, 8 // mesh.devices.size,
                                                                   multiple=64), batch_size=8)
    key = jax.random.PRNGKey(0)
    state = state_lib.create(key, c.actor, c.critic, c.ac, m)
    a_step = steps.make_actor_step(c.actor, shape, 2)
    ac_step = steps.make_ac_step(c.actor, c.critic, c.ac, shape, 2)
    run = lambda f: jax.jit(parallel.per_device(f, mesh, in_specs=(P(), P(), P(parallel.AXIS), P()),
                                                out_specs=(P(), P())))
    new_state, s1 = run(a_step)(state, dev, users, key)
    moved = lambda x, y: max(float(jnp.abs(a - b).max())
                             for a, b in zip(jax.tree.leaves(x.actor), jax.tree.leaves(y.actor)))
    moved1, moved3, s3 = moved(new_state, state), None, {"mse": 0.0}
    if c.actor.loss != "multinomial":  # Stage 3 backpropagates through the loss (the feature).
      ac_state, s3 = run(ac_step)(new_state, dev, users, key)
      moved3 = moved(ac_state, new_state)
    print(json.dumps({"preset": preset, "devices": jax.device_count(), "loss": float(s1["nll"]),
                      "kl": float(s1["kl"]), "critic_mse": float(s3["mse"]),
                      "moved_stage1": moved1, "moved_stage3": moved3}), flush=True)


if __name__ == "__main__":
  main()
