"""Reference models evaluated beside the actor (paper Table 1), as a registry.

Each baseline is a module with `fit(train: CSR, ...) -> params` and a jittable
`scores(params, fold_in_dense [B, M]) -> [B, M]`; `REGISTRY[name]` says how a `config.baselines`
block turns into the grid of hyper-parameters to search on validation users and into a fit.
`search.evaluate_baselines` runs them. Adding a baseline: its module, one `REGISTRY` entry, its grid
in `config_base.get_base_config().baselines`, and a test.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable

from ract_jax.baselines import cdae, ease, ease_search, popularity, slim, wmf


@dataclasses.dataclass(frozen=True)
class Baseline:
  """How to search and fit one baseline from the `config.baselines` block.

  grid(block) -> list of hyper-parameter dicts (each logged and recorded with the result);
  fit(train, block, hp) -> params; scores(params, fold_in_dense) -> [B, M]. A model may bring its
  own `search(train, validation_fold_in, block, validate, log) -> (hp, validation summary, params)`
  in place of fitting every grid point (EASE: one eigendecomposition for the whole grid).
  """

  grid: Callable
  fit: Callable
  scores: Callable
  search: Callable | None = None


def product_grid(block) -> list[dict]:
  """Every combination of a block of tuples (a scalar counts as a one-value tuple)."""
  grid = block.to_dict()
  keys = sorted(grid)
  values = [v if isinstance(v, (tuple, list)) else (v,) for v in (grid[k] for k in keys)]
  return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


REGISTRY = {
    "popularity": Baseline(grid=lambda b: [{}], fit=lambda train, b, hp: popularity.fit(train),
                           scores=popularity.scores),
    "ease": Baseline(grid=lambda b: [{"lam": float(v)} for v in b.ease_lambdas],
                     fit=lambda train, b, hp: ease.fit(train, hp["lam"],
                                                       max_items=b.ease_max_items),
                     scores=ease.scores,
                     search=lambda train, validation, b, validate, log: ease_search.search(
                         train, validation, b.ease_lambdas, validate, max_items=b.ease_max_items,
                         float64=b.ease_float64, log=log)),
    "wmf": Baseline(grid=lambda b: product_grid(b.wmf),
                    fit=lambda train, b, hp: wmf.fit(train, **hp), scores=wmf.scores),
    "slim": Baseline(grid=lambda b: product_grid(b.slim),
                     fit=lambda train, b, hp: slim.fit(train, max_items=b.slim_max_items, **hp),
                     scores=slim.scores),
    "cdae": Baseline(grid=lambda b: product_grid(b.cdae),
                     fit=lambda train, b, hp: cdae.fit(train, **hp), scores=cdae.scores),
}

__all__ = ["REGISTRY", "Baseline", "cdae", "ease", "ease_search", "popularity", "product_grid",
           "slim", "wmf"]
