"""Benchmark: jitted NDCG@100 (`ract_jax.metrics`) vs the authors' numpy argpartition approach,
and the checked public functions vs the bare jitted computation they wrap.

One batch of B=500 users over M=41,140 items (MSD's width), ~60 held-out and ~100 fold-in items per
user (fold-in at -inf), random normal scores. Times are the median over repeats after a warm-up
(which includes compilation), with `block_until_ready` on the JAX side; the implementations
alternate within each repeat. JAX and numpy must agree to 1e-5.

The cost of the input rules (`ract_jax.metrics`' docstring): `bare_*` is the computation as it was
before them (no shape / dtype / value checks, NaN not re-ranked, -inf slots counted by `heldout`),
kept here only, as the baseline; the checked public functions must return the same bits on this
batch, and `checked_*over_bare*` are time ratios, each against the bare function on the same input:
called eagerly with the float 0/1 `heldout` (this pays the eager value check), called inside
`jax.jit` as the trainer and the evaluator call them (the compiled program alone), and called
eagerly with a bool `heldout` (no value check). `value_check_s` times that check alone (one pass
over `[B, M]` and a device-to-host wait) and `input_checks_s` the shape / dtype checks. Usage:

  python experiments/bench_metrics.py [--users 500] [--items 41140] [--repeats 11]
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout
from ract_jax import metrics  # pylint: disable=wrong-import-position
# pylint: disable=protected-access  (the bare baseline reuses the unchanged NDCG / Recall helpers)


def numpy_ndcg_binary_at_k_batch(x_pred: np.ndarray, heldout: np.ndarray, k: int = 100):
  """The authors' NDCG@k (RaCT `evaluation_functions.py` / Liang `NDCG_binary_at_k_batch`).

  `argpartition` for the top k, then a sort of those k, then DCG / IDCG with RaCT's 0.1 floor.
  `np.argpartition` stands in for `bottleneck.argpartition` (not installed here).
  """
  b = x_pred.shape[0]
  rows = np.arange(b)[:, None]
  idx_topk_part = np.argpartition(-x_pred, k, axis=1)
  topk_part = x_pred[rows, idx_topk_part[:, :k]]
  idx_part = np.argsort(-topk_part, axis=1)
  idx_topk = idx_topk_part[rows, idx_part]
  tp = 1.0 / np.log2(np.arange(2, k + 2))
  dcg = (heldout[rows, idx_topk] * tp).sum(axis=1)
  idcg = np.array([tp[:min(int(n), k)].sum() for n in (heldout > 0).sum(axis=1)])
  return dcg / np.maximum(idcg, 0.1)


def _bare_top_hits(scores, heldout, k):
  """Top-k relevance and n_heldout as `ract_jax.metrics` computed them before its input rules."""
  k = min(k, scores.shape[-1])
  _, idx = jax.lax.top_k(scores, k)
  hits = jnp.take_along_axis(heldout, idx, axis=-1).astype(jnp.float32)
  n_heldout = jnp.sum(heldout.astype(jnp.float32), axis=-1)
  return hits, n_heldout


@functools.partial(jax.jit, static_argnames="k")
def bare_ndcg_at_k(scores, heldout, k):
  """NDCG@k without checks or input rules (the baseline of `checked_over_bare_ndcg@100`)."""
  hits, n = _bare_top_hits(scores, heldout, k)
  return metrics._ndcg_from_hits(hits, n, k)


@functools.partial(jax.jit, static_argnames=("ndcg_ks", "recall_ks"))
def bare_ranking_metrics(scores, heldout, ndcg_ks, recall_ks):
  """`ranking_metrics` without checks or input rules; `ndcg_ks` / `recall_ks` sorted tuples."""
  hits, n = _bare_top_hits(scores, heldout, max(ndcg_ks + recall_ks))
  out = {f"ndcg@{k}": metrics._ndcg_from_hits(hits, n, k) for k in ndcg_ks}
  out.update({f"recall@{k}": metrics._recall_from_hits(hits, n, k) for k in recall_ks})
  out["n_heldout"] = n.astype(jnp.int32)
  return out


def make_batch(n_users: int, n_items: int, n_heldout: int, n_foldin: int, seed: int = 0):
  """Random scores `[B, M]` float32 with fold-in at -inf, and 0/1 float32 held-out `[B, M]`."""
  rng = np.random.default_rng(seed)
  scores = rng.standard_normal((n_users, n_items), dtype=np.float32)
  heldout = np.zeros((n_users, n_items), np.float32)
  for u in range(n_users):
    nh = max(0, int(rng.poisson(n_heldout)))
    nf = max(0, int(rng.poisson(n_foldin)))
    items = rng.choice(n_items, size=nh + nf, replace=False)
    heldout[u, items[:nh]] = 1
    scores[u, items[nh:]] = -np.inf
    # Give held-out items a small boost so that NDCG is not ~0 (like a real model).
    scores[u, items[:nh]] += 1.5
  return scores, heldout


def _median_times(fns, repeats: int) -> list[float]:
  """Median wall time of each function; the functions alternate within every repeat so that a
  change in machine load affects all of them alike."""
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, ts in zip(fns, times):
      t0 = time.perf_counter()
      fn()
      ts.append(time.perf_counter() - t0)
  return [float(np.median(ts)) for ts in times]


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--users", type=int, default=500)
  p.add_argument("--items", type=int, default=41140)
  p.add_argument("--heldout", type=int, default=60)
  p.add_argument("--foldin", type=int, default=100)
  p.add_argument("--repeats", type=int, default=11)
  args = p.parse_args()

  scores, heldout = make_batch(args.users, args.items, args.heldout, args.foldin)
  s_dev, h_dev = jax.device_put(scores), jax.device_put(heldout)

  jax_fn = lambda: metrics.ndcg_at_k(s_dev, h_dev, 100).block_until_ready()
  ref = numpy_ndcg_binary_at_k_batch(scores, heldout, 100)
  got = np.asarray(jax_fn())  # warm-up (compiles)
  max_diff = float(np.max(np.abs(got - ref)))
  assert max_diff <= 1e-5, f"JAX and numpy NDCG@100 differ by {max_diff}"

  ndcg_ks, recall_ks = (10, 20, 50, 100, 200), (10, 20, 50, 100)
  all_fn = lambda: jax.block_until_ready(
      metrics.ranking_metrics(s_dev, h_dev, ndcg_ks=ndcg_ks, recall_ks=recall_ks))
  all_out = all_fn()  # warm-up
  assert float(np.max(np.abs(np.asarray(all_out["ndcg@100"]) - ref))) <= 1e-5

  bare_fn = lambda: bare_ndcg_at_k(s_dev, h_dev, 100).block_until_ready()
  bare_all_fn = lambda: jax.block_until_ready(
      bare_ranking_metrics(s_dev, h_dev, ndcg_ks=ndcg_ks, recall_ks=recall_ks))
  in_jit = jax.jit(lambda s, h: metrics.ndcg_at_k(s, h, 100))
  jit_fn = lambda: in_jit(s_dev, h_dev).block_until_ready()
  b_dev = jax.device_put(heldout > 0)
  bool_fn = lambda: metrics.ndcg_at_k(s_dev, b_dev, 100).block_until_ready()
  bare_bool_fn = lambda: bare_ndcg_at_k(s_dev, b_dev, 100).block_until_ready()
  # The input rules must change no bit on ordinary data (these calls are also the warm-ups).
  for name, fn, want in (("bare", bare_fn, got), ("in jit", jit_fn, got),
                         ("bool heldout", bool_fn, np.asarray(bare_bool_fn()))):
    np.testing.assert_array_equal(np.asarray(fn()), want, err_msg=name)
  bare_all = bare_all_fn()
  for name, value in all_out.items():
    np.testing.assert_array_equal(np.asarray(bare_all[name]), np.asarray(value), err_msg=name)
  value_check_fn = lambda: bool(metrics._any_not_binary(h_dev))
  assert not value_check_fn()  # warm-up
  checks_fn = lambda: [metrics._check_inputs("ndcg_at_k", s_dev, h_dev) for _ in range(1000)]
  t_check = _median_times([checks_fn], 3)[0] / 1000

  t_jax, t_np, t_all, t_bare, t_bare_all, t_jit, t_bool, t_bare_bool, t_value = _median_times(
      [jax_fn, lambda: numpy_ndcg_binary_at_k_batch(scores, heldout, 100), all_fn, bare_fn,
       bare_all_fn, jit_fn, bool_fn, bare_bool_fn, value_check_fn], args.repeats)

  b = args.users
  result = {
      "device": str(jax.devices()[0]),
      "batch": [b, args.items],
      "mean_ndcg@100": float(ref.mean()),
      "max_abs_diff_jax_vs_numpy": max_diff,
      "jax_ndcg@100_s": t_jax,
      "numpy_ndcg@100_s": t_np,
      "jax_ndcg@100_users_per_s": b / t_jax,
      "numpy_ndcg@100_users_per_s": b / t_np,
      "speedup_jax_over_numpy": t_np / t_jax,
      "jax_ranking_metrics_all_s": t_all,
      "jax_ranking_metrics_all_users_per_s": b / t_all,
      "ranking_metrics_cutoffs": {"ndcg": ndcg_ks, "recall": recall_ks},
      "bare_ndcg@100_s": t_bare,
      "checked_over_bare_ndcg@100": t_jax / t_bare,
      "bare_ranking_metrics_all_s": t_bare_all,
      "checked_over_bare_ranking_metrics_all": t_all / t_bare_all,
      "checked_in_jit_ndcg@100_s": t_jit,
      "checked_in_jit_over_bare_ndcg@100": t_jit / t_bare,
      "checked_bool_heldout_ndcg@100_s": t_bool,
      "bare_bool_heldout_ndcg@100_s": t_bare_bool,
      "checked_over_bare_ndcg@100_bool_heldout": t_bool / t_bare_bool,
      "input_checks_s": t_check,
      "value_check_s": t_value,
      "value_check_over_bare_ndcg@100": t_value / t_bare,
  }
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
