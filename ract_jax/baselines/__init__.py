"""Reference models evaluated beside the actor (paper Table 1): item popularity, EASE (Steck 2019),
WMF (Hu et al. 2008), SLIM (Ning & Karypis 2011) and CDAE (Wu et al. 2016, as run by Liang et al.).
Each has `fit(train: CSR, ...) -> params` and a jittable `scores(params, fold_in_dense [B, M])`."""

from ract_jax.baselines import cdae, ease, popularity, slim, wmf

__all__ = ["cdae", "ease", "popularity", "slim", "wmf"]
