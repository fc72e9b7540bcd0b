"""Reference baselines through the same evaluation as the actor: popularity and EASE (Steck 2019).

EASE's lambda is chosen on the validation users' NDCG@100 among `config.baselines.ease_lambdas`;
the test users are scored once, with that lambda.
"""

from __future__ import annotations

from ract_jax import evaluate
from ract_jax.baselines import ease, popularity

KNOWN = ("popularity", "ease")


def _popularity_score(params, entries, fold_in):
  del entries
  return popularity.scores(params, fold_in)


def _ease_score(params, entries, fold_in):
  del entries
  return ease.scores(params, fold_in)


def evaluate_baselines(config, run, done: dict) -> dict:
  """Evaluates each baseline in `config.baselines.names` not already in `done` (a resumed run).

  Args:
    config: the run's config.
    run: the `trainer.Run` (data, mesh, evaluators, records).
    done: `results.json` so far; baselines present there are not recomputed.

  Returns:
    `{name: {"validation": {...}, "test": {...}, ...}}` for the baselines evaluated now.
  """
  out = {}
  for name in config.baselines.names:
    if name not in KNOWN:
      raise ValueError(f"config.baselines.names: unknown baseline {name!r}; known: {KNOWN}.")
    if name in done:
      continue
    if name == "popularity":
      params = popularity.fit(run.data.train)
      val = evaluate.summarize(run.val.run(_popularity_score, params))
      test = evaluate.summarize(run.test.run(_popularity_score, params))
      out[name] = {"validation": val, "test": test}
    else:
      if run.n_items > config.baselines.ease_max_items:
        run.rec.warn(f"EASE skipped: {run.n_items} items > config.baselines.ease_max_items="
                     f"{config.baselines.ease_max_items} (a dense M x M inverse).")
        continue
      gram = ease.gram_matrix(run.data.train)
      best = None
      for lam in config.baselines.ease_lambdas:
        b = ease.fit_from_gram(gram, float(lam))
        val = evaluate.summarize(run.val.run(_ease_score, b))
        run.rec.log("ease  lambda %8.1f  val ndcg@100 %.4f", lam, val["ndcg@100"])
        if best is None or val["ndcg@100"] > best[1]["ndcg@100"]:
          best = (float(lam), val, b)
      lam, val, b = best
      test = evaluate.summarize(run.test.run(_ease_score, b))
      out[name] = {"lambda": lam, "validation": val, "test": test}
    t = out[name]["test"]
    run.rec.log("test  %-8s ndcg@100 %.4f  recall@20 %.4f  recall@50 %.4f", name, t["ndcg@100"],
                t["recall@20"], t["recall@50"])
  return out
