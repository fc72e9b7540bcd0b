"""Evaluation under strong generalisation (Liang et al. 2018; RaCT paper appendix A and E.2).

Held-out users' fold-in rows are the input (no dropout, z = mu); fold-in items are set to -inf; the
held-out 20% are ranked. Everything runs on device in batches (one jitted scan over all batches,
sharded over the `data` mesh); per-user values come back to the host once.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from ract_jax import actors, metrics
from ract_jax import critic as critic_lib
from ract_jax.data.csr import HeldOut
from ract_jax.device import batches, parallel

# score_fn(params, fold_in_entries, fold_in_dense [B, M]) -> scores [B, M] (before -inf masking).
ScoreFn = Callable[[object, batches.Entries, jax.Array], jax.Array]
# critic_fn(critic_state, critic_lib.CriticInputs) -> estimate [B] (evaluation mode).
CriticFn = Callable[[object, critic_lib.CriticInputs], jax.Array]
TOP_N_EXPORT = 100


def actor_score_fn(actor_config, first_layer: str = "sparse") -> ScoreFn:
  """Scores of an actor at evaluation: l2-normalised fold-in row, no dropout, z = mu.

  Args:
    actor_config: `config.actor`.
    first_layer: the form of its first layer (`actors.FIRST_LAYERS`).
  """

  def score(params, entries, fold_in):
    values = actors.input_values(entries.counts, entries.seg, entries.valid,
                                 actor_config.keep_prob, train=False,
                                 norm=actor_config.get("input_norm", "l2"))
    inp = actors.SparseInput(entries.seg, entries.item, values, entries.users)
    return actors.apply(params, actor_config, inp, None, train=False,
                        first_layer=first_layer).logits

  return score


def to_host(x) -> np.ndarray:
  """Fetches a (possibly multi-process) global array to every host."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


@dataclasses.dataclass
class Evaluator:
  """Evaluates models on one set of held-out users (validation or test).

  Build once per split (the users' CSRs go to the device once); call `run(score_fn, params)`.
  """

  split: HeldOut
  mesh: jax.sharding.Mesh
  batch_size: int = 2000
  ndcg_ks: tuple = (10, 20, 50, 100, 200)
  recall_ks: tuple = (10, 20, 50, 100)
  # Entry capacities; give the same (e.g. the max over validation and test, see `shared_caps`) to
  # evaluators of equally sized splits so that they run one compiled program.
  caps: tuple | None = None
  empty_users: str = "skip"  # How `summarize` counts users with no held-out items (config.eval).

  def __post_init__(self):
    n_dev = self.mesh.devices.size
    # Any batch on any mesh: rounded up to a multiple of the device count; the extra rows are
    # padding (-1), and every metric is per user, so the batch size does not change any number.
    self.batch_size = parallel.padded_batch_size(self.batch_size, self.mesh)
    self.n_items = self.split.fold_in.n_items
    self.top_n = min(TOP_N_EXPORT, self.n_items)
    self.cap_fold, self.cap_held = self.caps or shared_caps([self.split], self.batch_size, n_dev)
    replicated = parallel.replicated(self.mesh)
    self.fold_csr = batches.to_device_csr(self.split.fold_in, replicated)
    self.held_csr = batches.to_device_csr(self.split.held_out, replicated)
    self.order = parallel.put_replicated(
        batches.sequential_order(self.split.n_users, self.batch_size), self.mesh)
    self._compiled = {}

  def summarize(self, per_user: dict[str, np.ndarray]) -> dict:
    """`summarize(per_user)` with this split's rule for users without held-out items."""
    return summarize(per_user, self.empty_users)

  def _build(self, score_fn: ScoreFn, loss_fn, critic_fn: CriticFn | None):
    n_items, cap_f, cap_h = self.n_items, self.cap_fold, self.cap_held
    ndcg_ks, recall_ks, top_n = tuple(self.ndcg_ks), tuple(self.recall_ks), self.top_n

    def per_device(params, critic_state, fold_csr, held_csr, order):
      def body(_, rows):
        fe = batches.gather_entries(fold_csr, rows, cap_f)
        he = batches.gather_entries(held_csr, rows, cap_h)
        fold, held = batches.dense_rows(fe, n_items), batches.dense_rows(he, n_items)
        logits = score_fn(params, fe, fold)
        scores = jnp.where(fold > 0, -jnp.inf, logits)
        out = metrics.ranking_metrics(scores, held, ndcg_ks, recall_ks)
        out["n_heldout"] = he.counts
        out["n_foldin"] = fe.counts
        out["top"] = jax.lax.top_k(scores, top_n)[1]
        if loss_fn is not None:  # The critic's inputs, fold-in as seen, held-out as unseen.
          inputs = critic_lib.critic_inputs(logits, fold, held, loss_fn)
          out["nll"] = inputs.loss
          if critic_fn is not None:
            out["critic"] = critic_fn(critic_state, inputs)
        return None, out

      return jax.lax.scan(body, None, order)[1]

    fn = parallel.per_device(per_device, self.mesh,
                             in_specs=(P(), P(), P(), P(), P(None, parallel.AXIS)),
                             out_specs=P(None, parallel.AXIS))
    return jax.jit(fn)

  def run(self, score_fn: ScoreFn, params, loss_fn=None, critic_fn: CriticFn | None = None,
          critic_state=None) -> dict[str, np.ndarray]:
    """Per-user values for every held-out user, in row order of `split`.

    Args:
      score_fn: the model's scores (see `ScoreFn`); compiled once per function object.
      params: its parameters (any pytree).
      loss_fn: optional `loss(logits [B, M], x [B, M]) -> [B]`, the actor's per-user loss; with
        it, the critic's inputs are built (`critic.critic_inputs`, fold-in items as seen).
      critic_fn: optional critic estimate on those inputs (needs `loss_fn`), with its state.
      critic_state: the critic's parameters / statistics passed to `critic_fn`.

    Returns:
      `{'ndcg@K': [n], 'recall@K': [n], 'n_heldout': [n], 'n_foldin': [n], 'top': int32
        [n, top_n]}`, plus `'nll': [n]` when `loss_fn` is given and `'critic': [n]` with
        `critic_fn`.
    """
    if critic_fn is not None and loss_fn is None:
      raise ValueError("Evaluator.run: critic_fn needs loss_fn (the critic reads the actor's loss).")
    key = (id(score_fn), id(loss_fn), id(critic_fn))
    if key not in self._compiled:
      self._compiled[key] = self._build(score_fn, loss_fn, critic_fn)
    out = self._compiled[key](params, critic_state, self.fold_csr, self.held_csr, self.order)
    n = self.split.n_users
    return {k: to_host(v).reshape((-1,) + v.shape[2:])[:n] for k, v in out.items()}


def batch_size_for(splits, batch_size: int) -> int:
  """`batch_size` capped at the largest of `splits`' user counts (at least 1).

  A bigger batch only scores padding rows (ML-1M's 600 validation users in a batch of 2,000 took
  2.4x the time); every metric is per user, so the cap changes no metric (BUILD.md). One size for
  all `splits` keeps one compiled program for evaluators of equally sized splits.
  """
  return max(1, min(int(batch_size), max(s.n_users for s in splits)))


def shared_caps(splits, batch_size: int, n_devices: int) -> tuple[int, int]:
  """(fold-in, held-out) entry capacities that bound a local batch of any of `splits`."""
  local = max(1, -(-batch_size // n_devices))
  return (max(batches.entry_capacity(s.fold_in, local) for s in splits),
          max(batches.entry_capacity(s.held_out, local) for s in splits))


def summarize(per_user: dict[str, np.ndarray], empty: str = "skip") -> dict:
  """Mean and standard error of each metric over users with at least one held-out item
  (`empty='zero'`: over all users, those without held-out items as 0; `config.eval.empty_users`)."""
  out = {}
  for name, values in per_user.items():
    if "@" in name:
      s = metrics.summarize(values, per_user["n_heldout"], empty)
      out[name] = float(s["mean"])
      out[name + "_se"] = float(s["stderr"])
  any_metric = next(k for k in per_user if "@" in k)
  s = metrics.summarize(per_user[any_metric], per_user["n_heldout"], empty)
  out["n_users"] = int(s["n_users"])
  out["n_skipped"] = int(s["n_skipped"])
  return out


def write_predictions(path: str, uids: np.ndarray, top: np.ndarray) -> None:
  """Writes `uid<TAB>sid,sid,...` (top items in rank order; ids as in the Liang CSVs), atomically."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    for uid, row in zip(uids.tolist(), top.tolist()):
      f.write(f"{uid}\t{','.join(map(str, row))}\n")
  os.replace(tmp, path)
