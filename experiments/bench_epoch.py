"""Epoch-time benchmark of the three stages against the FLOP floor, as ratios taken in one run.

  python experiments/bench_epoch.py                  # CPU: ML-1M (if ../shared is there) + ML-20M shape
  python experiments/bench_epoch.py --shapes=ml20m,msd --steps=100   # e.g. on a GPU

A straightforward dense version of the stage-1 step (dense input, dense mask, dense first layer)
is timed in the same run for comparison. The floor of a stage-1 step is the decoder's three matmuls, 6 * B * M * H FLOPs (forward logits,
dW and dh), divided by this machine's float32 matmul rate measured here on the same shapes. The first
encoder layer is sparse (gather + segment sum) and is not counted: anything it costs counts against
us, as do the softmax, the batch construction and Adam.

For ML-20M / MSD shapes, synthetic interactions with the right numbers of users, items and
interactions (log-normal activity, Zipf popularity) are timed over `--steps` steps and scaled to a
full epoch; ML-1M-implicit is timed on whole epochs of the real data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from ract_jax import config_base as base  # noqa: E402
from ract_jax import actors  # noqa: E402
from ract_jax.actors import sparse_layer  # noqa: E402
from ract_jax.data.csr import CSR  # noqa: E402
from ract_jax.device import batches, parallel  # noqa: E402
from ract_jax.train import loops, state as state_lib, steps  # noqa: E402

SHAPES = {  # users, items, interactions (paper Table 3 after preprocessing)
    "ml20m": (136_677, 20_108, 10_000_000),
    "msd": (571_355, 41_140, 33_600_000),
}


def synthetic_csr(n_users, n_items, nnz, seed=0) -> CSR:
  """Random binary CSR with log-normal row lengths and Zipf item popularity (fast, vectorised)."""
  rng = np.random.default_rng(seed)
  lengths = rng.lognormal(0.0, 1.0, n_users)
  lengths = np.clip(np.round(lengths / lengths.sum() * nnz), 5, n_items // 2).astype(np.int64)
  pop = 1.0 / np.arange(1, n_items + 1)
  cdf = np.cumsum(pop / pop.sum())
  items = np.searchsorted(cdf, rng.random(int(lengths.sum()))).astype(np.int32)
  items = np.minimum(items, n_items - 1)
  indptr = np.concatenate([[0], np.cumsum(lengths)])
  # Duplicates within a row are harmless for timing (the dense batch is a set-scatter).
  return CSR(indptr=indptr, indices=items, n_items=n_items)


def matmul_rate(b, m, h, repeats=5) -> float:
  """Measured float32 FLOP/s of the decoder's three matmul shapes (logits, dW, dh)."""
  k = jax.random.split(jax.random.PRNGKey(0), 3)
  x, w, g = (jax.random.normal(k[0], (b, h)), jax.random.normal(k[1], (h, m)),
             jax.random.normal(k[2], (b, m)))
  f = jax.jit(lambda x, w, g: (x @ w, x.T @ g, g @ w.T))
  jax.block_until_ready(f(x, w, g))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(f(x, w, g))
    times.append(time.perf_counter() - t)
  return 6.0 * b * m * h / float(np.median(times))


def dense_reference_step(b, m, h=600, latent=200, repeats=3) -> float:
  """Seconds per step of a straightforward faithful Mult-VAE step written densely (dense [B, M]
  input, dense mask, dense first layer), for comparison in the same run."""
  k = jax.random.split(jax.random.PRNGKey(0), 6)
  g = jax.nn.initializers.glorot_uniform()
  p = {"e0": (g(k[0], (m, h)), jnp.zeros(h)), "mu": (g(k[1], (h, latent)), jnp.zeros(latent)),
       "lv": (g(k[2], (h, latent)), jnp.zeros(latent)), "d0": (g(k[3], (latent, h)), jnp.zeros(h)),
       "d1": (g(k[4], (h, m)), jnp.zeros(m))}
  tx = optax.adam(1e-3)
  x = (jax.random.uniform(k[5], (b, m)) < 73 / m).astype(jnp.float32)

  def loss(p, key):
    k1, k2 = jax.random.split(key)
    inp = x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), 1e-6)
    inp = inp * jax.random.bernoulli(k1, 0.5, inp.shape) / 0.5
    hid = jnp.tanh(inp @ p["e0"][0] + p["e0"][1])
    mu, lv = hid @ p["mu"][0] + p["mu"][1], hid @ p["lv"][0] + p["lv"][1]
    z = mu + jax.random.normal(k2, mu.shape) * jnp.exp(0.5 * lv)
    logits = jnp.tanh(z @ p["d0"][0] + p["d0"][1]) @ p["d1"][0] + p["d1"][1]
    kl = jnp.sum(0.5 * (-lv + jnp.exp(lv) + mu**2 - 1), -1)
    return jnp.mean(-jnp.sum(x * jax.nn.log_softmax(logits), -1) + 0.2 * kl)

  @jax.jit
  def step(p, st, key):
    grads = jax.grad(loss)(p, key)
    u, st = tx.update(grads, st, p)
    return optax.apply_updates(p, u), st

  st = tx.init(p)
  p, st = step(p, st, jax.random.PRNGKey(0))
  jax.block_until_ready(p)
  times = []
  for r in range(repeats):
    t = time.perf_counter()
    p, st = step(p, st, jax.random.PRNGKey(r + 1))
    jax.block_until_ready(p)
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def time_stages(csr: CSR, config, n_rows: int, repeats: int, stages=("actor", "critic", "ac")):
  """Seconds per step of each stage, from whole jitted epochs over `n_rows` users (compile excluded)."""
  mesh = parallel.make_mesh()
  m = csr.n_items
  local = parallel.local_batch_size(config.batch_size, mesh)
  shape = steps.BatchShape(n_items=m, batch_size=config.batch_size,
                           cap=batches.entry_capacity(csr, local,
                                                      multiple=sparse_layer.DEFAULT_CHUNK))
  dev = batches.to_device_csr(csr, parallel.replicated(mesh))
  n_steps = -(-n_rows // config.batch_size)
  key = jax.random.PRNGKey(0)

  def init():
    return state_lib.create(key, config.actor, config.critic, config.ac, m)

  out = {}
  for stage in stages:
    carry = jax.jit(init, out_shardings=parallel.replicated(mesh))()
    if stage == "actor":
      step = steps.make_actor_step(config.actor, shape, n_steps)
    elif stage == "critic":
      step = steps.make_critic_step(config.actor, config.critic, shape)
    else:
      step = steps.make_ac_step(config.actor, config.critic, config.ac, shape, n_steps)
    epoch = loops.make_epoch("bench-" + stage, step, mesh, n_rows, config.batch_size)
    carry, sums = epoch(carry, dev, jax.random.PRNGKey(1))  # compile + first run
    jax.block_until_ready(sums)
    times = []
    for r in range(repeats):
      t = time.perf_counter()
      carry, sums = epoch(carry, dev, jax.random.PRNGKey(2 + r))
      jax.block_until_ready(sums)
      times.append(time.perf_counter() - t)
    out[stage] = float(np.median(times)) / n_steps
  return out


def _config(batch_size=500):
  c = base.get_base_config()
  c.batch_size = batch_size
  return c


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--shapes", default="ml1m,ml20m", help="comma list of ml1m, ml20m, msd")
  ap.add_argument("--steps", type=int, default=20, help="steps timed per synthetic epoch")
  ap.add_argument("--repeats", type=int, default=2)
  ap.add_argument("--stages", default="actor,critic,ac")
  ap.add_argument("--presets", default="",
                  help="comma list of actor presets (configs/base.py ACTOR_PRESETS): time --stages of "
                       "each, as ratios to the first preset (instead of the floor comparison)")
  ap.add_argument("--json", default="", help="also write the results here")
  args = ap.parse_args()
  config = _config()
  h = config.actor.hidden_dim
  stages = tuple(args.stages.split(","))
  print(f"devices: {jax.devices()}")
  results = {"device": str(jax.devices()[0].device_kind), "n_devices": jax.device_count()}
  for shape in args.shapes.split(","):
    if shape == "ml1m":
      path = base.shared_data("ml-1m-implicit/interactions.txt")
      if not os.path.exists(path):
        print(f"ml1m: skipped, {path} not found")
        continue
      from ract_jax import data as data_lib
      cfg = base.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                   "configs", "ml1m_implicit.py"))
      data = data_lib.load_dataset(cfg.data, log=lambda *a: None)
      csr, n_rows = data.train, data.train.n_rows
    else:
      n_users, n_items, nnz = SHAPES[shape]
      csr = synthetic_csr(n_users, n_items, nnz)
      n_rows = min(n_users, args.steps * config.batch_size)
    m = csr.n_items
    if args.presets:
      # Each preset's stages, as ratios to the first preset's same stage and to its stage 3 (a
      # "RaCT epoch", the paper's unit when it says WARP / LambdaRank cost about 2x / 10x).
      names = args.presets.split(",")
      row = {}
      for preset in names:
        c = base.apply_variant(_config(), preset, "bench")
        row[preset] = {f"{s}_s_per_step": t
                       for s, t in time_stages(csr, c, n_rows, args.repeats, stages).items()}
        ref = row[names[0]]
        for s in stages:
          t = row[preset][f"{s}_s_per_step"]
          row[preset][f"{s}_over_{names[0]}"] = t / ref[f"{s}_s_per_step"]
          text = f"  {shape} {preset:12s} stage {s:6s} {t * 1e3:9.1f} ms/step  " \
                 f"{t / ref[f'{s}_s_per_step']:6.2f}x {names[0]}'s"
          if "ac" in stages:
            row[preset][f"{s}_over_{names[0]}_ract"] = t / ref["ac_s_per_step"]
            text += f"  {t / ref['ac_s_per_step']:6.2f}x {names[0]}'s RaCT (stage 3) step"
          print(text, flush=True)
      results[shape] = row
      continue
    rate = matmul_rate(config.batch_size, m, h)
    floor = 6.0 * config.batch_size * m * h / rate
    per_step = time_stages(csr, config, n_rows, args.repeats, stages)
    dense = dense_reference_step(config.batch_size, m, h)
    steps_per_epoch = -(-csr.n_rows // config.batch_size)
    row = {"users": csr.n_rows, "items": m, "interactions": csr.nnz,
           "steps_per_epoch": steps_per_epoch, "matmul_gflops": rate / 1e9,
           "floor_s_per_step": floor, "dense_reference_s_per_step": dense}
    for s, t in per_step.items():
      row[f"{s}_s_per_step"] = t
      row[f"{s}_s_per_epoch"] = t * steps_per_epoch
      row[f"{s}_over_floor"] = t / floor
    if "actor" in per_step:
      for s in per_step:
        row[f"{s}_over_actor"] = per_step[s] / per_step["actor"]
    results[shape] = row
    print(f"\n{shape}: {csr.n_rows:,} users x {m:,} items, {csr.nnz:,} interactions, "
          f"{steps_per_epoch} steps/epoch")
    print(f"  measured f32 matmul rate {rate / 1e9:.1f} GFLOP/s -> floor {floor * 1e3:.1f} ms/step "
          f"({floor * steps_per_epoch:.2f} s/epoch)")
    print(f"  dense reference stage-1 step {dense * 1e3:8.1f} ms/step  {dense / floor:.2f}x floor")
    for s, t in per_step.items():
      extra = f", {t / per_step['actor']:.2f}x stage 1" if "actor" in per_step else ""
      print(f"  stage {s:6s} {t * 1e3:8.1f} ms/step  {t * steps_per_epoch:8.2f} s/epoch  "
            f"{t / floor:.2f}x floor{extra}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)
  print(json.dumps(results))


if __name__ == "__main__":
  main()
