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


def _grid_search(name: str, baseline, block, train: CSR, validate, log):
  """Every grid point fitted and validated; returns the best (hp, summary, params)."""
  best = None
  for hp in baseline.grid(block):
    t0 = time.perf_counter()
    params = baseline.fit(train, block, hp)
    val = validate(_SCORERS[name], params)
    if hp:
      log(f"{name:<5} {hp}  val ndcg@100 {val['ndcg@100']:.4f}  ({time.perf_counter() - t0:.1f} s)")
    if best is None or val["ndcg@100"] > best[1]["ndcg@100"]:
      best = (hp, val, params)
  return best


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
  validate = lambda fn, params: validation.summarize(validation.run(fn, params))  # noqa: E731
  out = {}
  for name in block.names:
    if name in done:
      continue
    baseline, score = REGISTRY[name], _SCORERS[name]
    t_start = time.perf_counter()
    try:  # Too many items for a dense M x M model, or too little memory: say so, go on.
      if baseline.search is not None:
        best = baseline.search(train, validation.split.fold_in, block, validate, log)
      else:
        best = _grid_search(name, baseline, block, train, validate, log)
    except ValueError as e:
      warn(f"{name} skipped: {e}")
      continue
    hp, val, params = best
    result = test.summarize(test.run(score, params))
    out[name] = {"hyperparameters": hp, "validation": val, "test": result,
                 "seconds": time.perf_counter() - t_start}
    log(f"test  {name:<8} ndcg@100 {result['ndcg@100']:.4f}  recall@20 {result['recall@20']:.4f}  "
        f"recall@50 {result['recall@50']:.4f}  {hp or ''}")
  return out
