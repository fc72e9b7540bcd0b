"""The actor's starting point from a fitted model (`config.actor.init`), before stage 1.

  WARM_STARTS[config.actor.init](run, actor_params) -> (actor_params, what was done)

'random' keeps Table 4's initialisers. 'ease' (the item-item actor, issue 14) searches EASE's lambda
on the validation users with `baselines.ease_search` (the same search, grid and memory checks as
EASE's baseline row) and writes its B into the actor's "item" block; the per-item offset stays 0, a
low-rank correction U V (shape 'lowrank') starts with V = 0, so the actor's scores are EASE's.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ract_jax.baselines import REGISTRY
from ract_jax.device import parallel


def _ease(run, params: dict) -> tuple[dict, str]:
  cfg = run.config
  if "item" not in params or params["item"]["w"].shape != (run.shape.n_items,) * 2:
    raise ValueError(f"config.actor.init='ease' needs an item-item actor (an M x M 'item' block); "
                     f"config.actor.kind={cfg.actor.kind!r} has none. Use the :item_item preset.")
  validate = lambda fn, p: run.validation.summarize(run.validation.run(fn, p))  # noqa: E731
  hp, val, b = REGISTRY["ease"].search(run.data.train, run.validation.split.fold_in, cfg.baselines,
                                       validate, run.records.log)
  params = dict(params)
  params["item"] = {"w": jnp.asarray(b, jnp.float32), "b": jnp.zeros_like(params["item"]["b"])}
  params = jax.device_put(params, parallel.replicated(run.mesh))
  return params, (f"B = EASE's closed form at lambda {hp['lam']:g} (validation ndcg@100 "
                  f"{val['ndcg@100']:.4f})")


WARM_STARTS: dict[str, Callable | None] = {"random": None, "ease": _ease}


def check(actor_cfg) -> None:
  """Raises ValueError naming `config.actor.init` for an unknown value."""
  if actor_cfg.init not in WARM_STARTS:
    raise ValueError(f"config.actor.init={actor_cfg.init!r}: expected one of {tuple(WARM_STARTS)}.")


def initial_actor(run, params: dict) -> dict:
  """The actor's parameters to start from (`config.actor.init`); logs what was done.

  Args:
    run: the `setup.Run`.
    params: the freshly initialised actor (replicated on the mesh).

  Returns:
    The actor's parameters, replicated on the mesh.
  """
  check(run.config.actor)
  start = WARM_STARTS[run.config.actor.init]
  if start is None:
    return params
  params, what = start(run, params)
  run.records.log("actor initialised from a fitted model: %s", what)
  return params
