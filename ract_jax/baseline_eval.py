"""Reference baselines through the same evaluation as the actor (paper Table 1).

`popularity`; EASE (Steck 2019), lambda in `config.baselines.ease_lambdas`; WMF (Hu et al. 2008),
SLIM (Ning & Karypis 2011) and CDAE (Wu et al. 2016) with the grids `config.baselines.{wmf,slim,
cdae}`. Every hyper-parameter is chosen on the validation users' NDCG@100; the test users are scored
once, with the chosen values.
"""

from __future__ import annotations

import itertools
import time

from ract_jax import evaluate
from ract_jax.baselines import cdae, ease, popularity, slim, wmf

KNOWN = ("popularity", "ease", "wmf", "slim", "cdae")


def _scorer(module):
  return lambda params, entries, fold_in: module.scores(params, fold_in)


# One function object per model, so each evaluator compiles it once.
_SCORERS = {name: _scorer(m) for name, m in
            [("popularity", popularity), ("ease", ease), ("wmf", wmf), ("slim", slim),
             ("cdae", cdae)]}


def _grid(config, name) -> list[dict]:
  """The hyper-parameter settings to try for `name` (a list of keyword dicts)."""
  b = config.baselines
  if name == "popularity":
    return [{}]
  if name == "ease":
    return [{"lam": float(v)} for v in b.ease_lambdas]
  grid = b[name].to_dict()
  keys = sorted(grid)
  values = [v if isinstance(v, (tuple, list)) else (v,) for v in (grid[k] for k in keys)]
  return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def _fit(config, name, train, hp):
  b = config.baselines
  if name == "popularity":
    return popularity.fit(train)
  if name == "ease":
    return ease.fit(train, hp["lam"], max_items=b.ease_max_items)
  if name == "slim":
    return slim.fit(train, max_items=b.slim_max_items, **hp)
  return {"wmf": wmf, "cdae": cdae}[name].fit(train, **hp)


def evaluate_baselines(config, run, done: dict) -> dict:
  """Evaluates each baseline in `config.baselines.names` not already in `done` (a resumed run).

  Args:
    config: the run's config.
    run: the `trainer.Run` (data, mesh, evaluators, records).
    done: `results.json` so far; baselines present there are not recomputed.

  Returns:
    `{name: {"hyperparameters": {...}, "validation": {...}, "test": {...}, "seconds": float}}` for
    the baselines evaluated now (`seconds`: wall time of the grid search and the test scoring).
  """
  out = {}
  for name in config.baselines.names:
    if name not in KNOWN:
      raise ValueError(f"config.baselines.names: unknown baseline {name!r}; known: {KNOWN}.")
    if name in done:
      continue
    score = _SCORERS[name]
    best = None
    t_start = time.perf_counter()
    for hp in _grid(config, name):
      t0 = time.perf_counter()
      try:
        params = _fit(config, name, run.data.train, hp)
      except ValueError as e:  # Too many items for a dense M x M model: say so, go on.
        run.rec.warn(f"{name} skipped: {e}")
        break
      val = evaluate.summarize(run.val.run(score, params))
      if hp:
        run.rec.log("%-5s %s  val ndcg@100 %.4f  (%.1f s)", name, hp, val["ndcg@100"],
                    time.perf_counter() - t0)
      if best is None or val["ndcg@100"] > best[1]["ndcg@100"]:
        best = (hp, val, params)
    if best is None:
      continue
    hp, val, params = best
    test = evaluate.summarize(run.test.run(score, params))
    # Wall time of the whole grid search (fits, compiles and validation scoring) and the test scoring.
    out[name] = {"hyperparameters": hp, "validation": val, "test": test,
                 "seconds": time.perf_counter() - t_start}
    run.rec.log("test  %-8s ndcg@100 %.4f  recall@20 %.4f  recall@50 %.4f  %s", name,
                test["ndcg@100"], test["recall@20"], test["recall@50"], hp or "")
  return out
