"""Baselines through the same evaluation as the actor (paper Table 1): every hyper-parameter is
chosen on the validation users' NDCG@100, then the test users are scored once with the choice."""

from __future__ import annotations

import time
from typing import Callable

import ml_collections

from ract_jax import evaluate
from ract_jax.baselines import REGISTRY
from ract_jax.data.csr import CSR


def _scorer(scores):
  return lambda params, entries, fold_in: scores(params, fold_in)


# One function object per model, so each evaluator compiles it once.
_SCORERS = {name: _scorer(b.scores) for name, b in REGISTRY.items()}


def check_names(block: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming `config.baselines.names` if it lists an unknown baseline."""
  for name in block.names:
    if name not in REGISTRY:
      raise ValueError(f"config.baselines.names: unknown baseline {name!r}; known: "
                       f"{tuple(REGISTRY)}.")


def evaluate_baselines(block: ml_collections.ConfigDict, train: CSR,
                       validation: evaluate.Evaluator, test: evaluate.Evaluator,
                       log: Callable[[str], None], warn: Callable[[str], None],
                       done: dict) -> dict:
  """Evaluates each baseline in `block.names` not already in `done` (a resumed run).

  Args:
    block: `config.baselines`.
    train: the training users' interactions.
    validation, test: evaluators of the validation and test users.
    log, warn: progress lines and warnings.
    done: `results.json` so far; baselines present there are not recomputed.

  Returns:
    `{name: {"hyperparameters": {...}, "validation": {...}, "test": {...}, "seconds": float}}` for
    the baselines evaluated now (`seconds`: wall time of the grid search and the test scoring).
  """
  check_names(block)
  out = {}
  for name in block.names:
    if name in done:
      continue
    baseline, score = REGISTRY[name], _SCORERS[name]
    best = None
    t_start = time.perf_counter()
    for hp in baseline.grid(block):
      t0 = time.perf_counter()
      try:
        params = baseline.fit(train, block, hp)
      except ValueError as e:  # Too many items for a dense M x M model: say so, go on.
        warn(f"{name} skipped: {e}")
        break
      val = evaluate.summarize(validation.run(score, params))
      if hp:
        log(f"{name:<5} {hp}  val ndcg@100 {val['ndcg@100']:.4f}  "
            f"({time.perf_counter() - t0:.1f} s)")
      if best is None or val["ndcg@100"] > best[1]["ndcg@100"]:
        best = (hp, val, params)
    if best is None:
      continue
    hp, val, params = best
    result = evaluate.summarize(test.run(score, params))
    out[name] = {"hyperparameters": hp, "validation": val, "test": result,
                 "seconds": time.perf_counter() - t_start}
    log(f"test  {name:<8} ndcg@100 {result['ndcg@100']:.4f}  recall@20 {result['recall@20']:.4f}  "
        f"recall@50 {result['recall@50']:.4f}  {hp or ''}")
  return out
