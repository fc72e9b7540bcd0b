"""ract_jax: Ranking-Critical Training (Lobel et al., ICLR 2020) for collaborative filtering in JAX.

Public, importable pieces:
  ract_jax.metrics   jitted ranking-metric oracles (ndcg_at_k, recall_at_k)
  ract_jax.data      raw readers, the Liang et al. 2018 protocol, the processed-data store
"""

__version__ = "0.3.1"
