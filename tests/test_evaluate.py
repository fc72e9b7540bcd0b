"""Tests for `evaluate`'s batch sizing (the evaluator's metrics are pinned in test_metrics and the
training tests)."""

from __future__ import annotations

import numpy as np

from ract_jax import evaluate
from ract_jax.baselines import ease_search
from ract_jax.data.csr import CSR, HeldOut
from ract_jax.device import parallel


def _split(seed: int, n_users: int, n_items: int = 30) -> HeldOut:
  rng = np.random.RandomState(seed)
  dense = rng.rand(n_users, n_items) < 0.3
  held = dense & (rng.rand(n_users, n_items) < 0.3)
  def csr(x):
    rows, items = np.nonzero(x)
    return CSR.from_pairs(rows, items, n_users, n_items)
  return HeldOut(uids=np.arange(n_users), fold_in=csr(dense & ~held), held_out=csr(held))


def test_batch_size_is_capped_at_the_largest_split():
  small, large = _split(0, 7), _split(1, 40)
  assert evaluate.batch_size_for([small], 2000) == 7
  assert evaluate.batch_size_for([small, large], 2000) == 40  # One size: one compiled program.
  assert evaluate.batch_size_for([small, large], 16) == 16  # Smaller batches are left alone.


def test_the_cap_changes_no_metric():
  split = _split(2, 40)
  b = np.random.RandomState(3).randn(30, 30).astype(np.float32)
  out = {}
  for size in (2000, evaluate.batch_size_for([split], 2000)):
    ev = evaluate.Evaluator(split, parallel.make_mesh(), batch_size=size)
    out[size] = ev.run(ease_search.direct_scores, b)
  want, got = out[2000], out[40]
  assert set(want) == set(got)
  for key in want:
    np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-6, err_msg=key)
  np.testing.assert_array_equal(got["top"], want["top"])
