"""Epoch-time benchmark of the three stages against the floor and a dense reference, in one run.

  python experiments/bench_epoch.py                  # CPU: ML-1M (if ../shared is there) + ML-20M shape
  python experiments/bench_epoch.py --shapes=ml20m,msd --steps=100   # e.g. on a GPU

A straightforward dense version of the stage-1 step (dense input, dense mask, dense first layer)
is timed in the same run for comparison, interleaved with ours (each round times every candidate
once; the table gives the minimum over `--repeats` rounds, the fairest figure on a loaded machine).
Stage 1 is timed with each form of the actor's first layer (`config.actor.first_layer`: 'sparse',
'dense') and 'auto' is the one chosen for the shape's density.

The floor of a stage-1 step is the larger of two bounds measured on this device in this run:
FLOPs, the decoder's three matmuls (6 * B * M * H: forward logits, dW and dh) at the measured
float32 matmul rate on the same shapes; bytes, Adam's reads and writes of every actor parameter
(7 x 4 bytes each: p, g, m, v in; p, m, v out) plus the [B, M] logits and their gradient written and
read once (16 * B * M), at the measured memory bandwidth. The first encoder layer, the softmax, the
batch construction and the mask are not counted: anything they cost counts against us.

For ML-20M / MSD shapes, synthetic interactions with the right numbers of users, items and
interactions (log-normal activity, Zipf popularity) are timed over `--steps` steps and scaled to a
full epoch; ML-1M-implicit is timed on whole epochs of the real data.
"""

from __future__ import annotations

import argparse
import functools
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

MEMORY_BYTES = 256 << 20
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


def _timer(f):
  """`run() -> seconds` of one call of `f` (compiled and warmed here)."""
  jax.block_until_ready(f())

  def run():
    t = time.perf_counter()
    jax.block_until_ready(f())
    return time.perf_counter() - t

  return run


def matmul_runner(b, m, h):
  """Times the decoder's three matmul shapes (logits, dW, dh; 6 * b * m * h FLOPs) at the device's
  default precision (what the actor's matmuls get with matmul_precision='default')."""
  k = jax.random.split(jax.random.PRNGKey(0), 3)
  x, w, g = (jax.random.normal(k[0], (b, h)), jax.random.normal(k[1], (h, m)),
             jax.random.normal(k[2], (b, m)))
  f = jax.jit(lambda x, w, g: (x @ w, x.T @ g, g @ w.T))
  return _timer(lambda: f(x, w, g))


def memory_runner(n_bytes=MEMORY_BYTES):
  """Times a streaming update `x * a + b` on `n_bytes` of float32 (2 * n_bytes moved)."""
  x = jnp.ones((n_bytes // 4,), jnp.float32)
  f = jax.jit(lambda x: x * 1.0001 + 1.0)
  return _timer(lambda: f(x))


def matmul_rate(b, m, h, repeats=5) -> float:
  """Measured FLOP/s of the decoder's three matmul shapes (best of `repeats`)."""
  run = matmul_runner(b, m, h)
  return 6.0 * b * m * h / min(run() for _ in range(repeats))


def floor_parts(b, m, n_params, h, flop_rate, byte_rate) -> dict:
  """The stage-1 floor's two bounds in seconds per step (see the module docstring)."""
  return {"flops_s": 6.0 * b * m * h / flop_rate,
          "bytes_s": (28.0 * n_params + 16.0 * b * m) / byte_rate}


def dense_reference_runner(b, m, h=600, latent=200, steps_per_call=2):
  """A straightforward faithful Mult-VAE step written densely (dense [B, M] input, dense mask,
  dense first layer), compiled and warmed; returns `run() -> seconds per step`."""
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

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(p, st, key):
    grads = jax.grad(loss)(p, key)
    u, st = tx.update(grads, st, p)
    return optax.apply_updates(p, u), st

  carry = [p, tx.init(p)]
  calls = [0]

  def run():
    t = time.perf_counter()
    for _ in range(steps_per_call):
      calls[0] += 1
      carry[:] = step(*carry, jax.random.PRNGKey(calls[0]))
    jax.block_until_ready(carry)
    return (time.perf_counter() - t) / steps_per_call

  run()  # Compile.
  return run


def stage_runner(csr: CSR, config, n_rows: int, stage: str, first_layer: str):
  """One stage's jitted epoch over `n_rows` users with the given first-layer form, compiled and
  warmed; returns `run() -> seconds per step` (one whole epoch per call)."""
  mesh = parallel.make_mesh()
  m = csr.n_items
  local = parallel.local_batch_size(config.batch_size, mesh)
  shape = steps.BatchShape(n_items=m, batch_size=config.batch_size, first_layer=first_layer,
                           cap=batches.entry_capacity(csr, local,
                                                      multiple=sparse_layer.DEFAULT_CHUNK))
  dev = batches.to_device_csr(csr, parallel.replicated(mesh))
  n_steps = -(-n_rows // config.batch_size)
  key = jax.random.PRNGKey(0)
  init = lambda: state_lib.create(key, config.actor, config.critic, config.ac, m)
  if stage == "actor":
    step = steps.make_actor_step(config.actor, shape, n_steps)
  elif stage == "critic":
    step = steps.make_critic_step(config.actor, config.critic, shape)
  else:
    step = steps.make_ac_step(config.actor, config.critic, config.ac, shape, n_steps)
  epoch = loops.make_epoch(f"bench-{stage}-{first_layer}", step, mesh, n_rows, config.batch_size)
  carry = [jax.jit(init, out_shardings=parallel.replicated(mesh))()]
  calls = [0]

  def run():
    t = time.perf_counter()
    calls[0] += 1
    carry[0], sums = epoch(carry[0], dev, jax.random.PRNGKey(calls[0]))
    jax.block_until_ready(sums)
    return (time.perf_counter() - t) / n_steps

  run()  # Compile + first run.
  return run


def interleaved(runners: dict, repeats: int) -> dict:
  """`{name: min seconds per step}` over `repeats` rounds, each round running every runner once."""
  best = {name: np.inf for name in runners}
  for _ in range(repeats):
    for name, run in runners.items():
      best[name] = min(best[name], run())
  return best


def time_stages(csr: CSR, config, n_rows: int, repeats: int, stages=("actor", "critic", "ac")):
  """Seconds per step of each stage with the 'auto' first layer (compile excluded)."""
  form = actors.first_layer_form(config.actor, density(csr))
  return interleaved({s: stage_runner(csr, config, n_rows, s, form) for s in stages}, repeats)


def density(csr: CSR) -> float:
  return csr.nnz / max(1, csr.n_rows * csr.n_items)


def _config(batch_size=500):
  c = base.get_base_config()
  c.batch_size = batch_size
  return c


def _load(shape: str, n_steps: int, batch_size: int):
  """(csr, users timed per epoch) of a shape, or None when ML-1M's data is not there."""
  if shape == "ml1m":
    path = base.shared_data("ml-1m-implicit/interactions.txt")
    if not os.path.exists(path):
      print(f"ml1m: skipped, {path} not found")
      return None
    from ract_jax import data as data_lib
    cfg = base.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                 "configs", "ml1m_implicit.py"))
    data = data_lib.load_dataset(cfg.data, log=lambda *a: None)
    return data.train, data.train.n_rows
  n_users, n_items, nnz = SHAPES[shape]
  return synthetic_csr(n_users, n_items, nnz), min(n_users, n_steps * batch_size)


def bench_shape(csr: CSR, n_rows: int, config, stages, repeats: int) -> dict:
  """The floor, the dense reference and our stages (stage 1 in both first-layer forms), timed
  interleaved in one run; one result row."""
  m, b, h = csr.n_items, config.batch_size, config.actor.hidden_dim
  auto = actors.first_layer_form(config.actor, density(csr))
  n_params = actors.param_count(jax.eval_shape(lambda: actors.init(
      jax.random.PRNGKey(0), config.actor, m)))
  # The rates are timed in the same interleaved rounds as the steps, so load hits them alike.
  runners = {"matmul": matmul_runner(b, m, h), "memory": memory_runner(),
             "dense_reference": dense_reference_runner(b, m, h)}
  for s in stages:
    forms = ("sparse", "dense") if s == "actor" else (auto,)
    for form in forms:
      runners[f"{s}:{form}"] = stage_runner(csr, config, n_rows, s, form)
  best = interleaved(runners, repeats)
  flop_rate, byte_rate = 6.0 * b * m * h / best.pop("matmul"), 2.0 * MEMORY_BYTES / best.pop("memory")
  parts = floor_parts(b, m, n_params, h, flop_rate, byte_rate)
  floor = max(parts.values())
  steps_per_epoch = -(-csr.n_rows // b)
  row = {"users": csr.n_rows, "items": m, "interactions": csr.nnz, "density": density(csr),
         "steps_per_epoch": steps_per_epoch, "first_layer_auto": auto,
         "matmul_gflops": flop_rate / 1e9, "memory_gbytes_per_s": byte_rate / 1e9,
         "floor_flops_s_per_step": parts["flops_s"], "floor_bytes_s_per_step": parts["bytes_s"],
         "floor_s_per_step": floor, "repeats": repeats}
  dense = best.pop("dense_reference")
  row["dense_reference_s_per_step"] = dense
  best["actor"] = best[f"actor:{auto}"] if "actor" in stages else None
  for name, t in best.items():
    if t is None:
      continue
    key = name.replace(":", "_")
    row[f"{key}_s_per_step"] = t
    row[f"{key}_s_per_epoch"] = t * steps_per_epoch
    row[f"{key}_over_floor"] = t / floor
    row[f"{key}_over_dense_reference"] = t / dense
  return row


def print_row(shape: str, row: dict) -> None:
  print(f"\n{shape}: {row['users']:,} users x {row['items']:,} items, {row['interactions']:,} "
        f"interactions (density {100 * row['density']:.2f}%), {row['steps_per_epoch']} steps/epoch;"
        f" min of {row['repeats']} interleaved rounds")
  print(f"  measured matmul {row['matmul_gflops']:.1f} GFLOP/s, memory "
        f"{row['memory_gbytes_per_s']:.1f} GB/s -> floor {row['floor_s_per_step'] * 1e3:.1f} ms/step"
        f" (FLOPs {row['floor_flops_s_per_step'] * 1e3:.1f}, bytes "
        f"{row['floor_bytes_s_per_step'] * 1e3:.1f})")
  print(f"  {'':24s} {'ms/step':>9s} {'s/epoch':>9s} {'x floor':>8s} {'x dense ref':>11s}")
  names = ["dense_reference"] + [k[:-len("_s_per_step")] for k in row
                                 if k.endswith("_s_per_step") and not k.startswith(
                                     ("floor", "dense_reference"))]
  for name in names:
    t = row[f"{name}_s_per_step"]
    label = {"actor": f"stage 1 (auto={row['first_layer_auto']})"}.get(name, name)
    label = label.replace("actor_", "stage 1 ").replace("critic_", "stage 2 ").replace(
        "ac_", "stage 3 ")
    print(f"  {label:24s} {t * 1e3:9.1f} {t * row['steps_per_epoch']:9.2f} "
          f"{t / row['floor_s_per_step']:8.2f} {t / row['dense_reference_s_per_step']:11.2f}")


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--shapes", default="ml1m,ml20m", help="comma list of ml1m, ml20m, msd")
  ap.add_argument("--steps", type=int, default=20, help="steps timed per synthetic epoch")
  ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (the minimum is kept)")
  ap.add_argument("--stages", default="actor,critic,ac")
  ap.add_argument("--scale", type=float, default=1.0,
                  help="shrink the synthetic shapes' users, items and interactions by this factor "
                       "(e.g. 0.05 to check the script end to end on a small CPU)")
  ap.add_argument("--presets", default="",
                  help="comma list of actor presets (configs/base.py ACTOR_PRESETS): time --stages of "
                       "each, as ratios to the first preset (instead of the floor comparison)")
  ap.add_argument("--json", default="", help="also write the results here")
  args = ap.parse_args()
  config = _config()
  stages = tuple(args.stages.split(","))
  print(f"devices: {jax.devices()}")
  results = {"device": str(jax.devices()[0].device_kind), "n_devices": jax.device_count()}
  if args.scale != 1.0:
    for name, dims in SHAPES.items():
      SHAPES[name] = tuple(max(100, int(d * args.scale)) for d in dims)
  for shape in args.shapes.split(","):
    loaded = _load(shape, args.steps, config.batch_size)
    if loaded is None:
      continue
    csr, n_rows = loaded
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
    results[shape] = row = bench_shape(csr, n_rows, config, stages, args.repeats)
    print_row(shape, row)
    sys.stdout.flush()
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)
  print(json.dumps(results))


if __name__ == "__main__":
  main()
