"""Non-neural baselines evaluated beside the actor: item popularity and EASE (Steck 2019)."""

from ract_jax.baselines import ease, popularity

__all__ = ["ease", "popularity"]
