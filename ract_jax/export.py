"""The saved model's scoring function as a serialized `jax.export` artifact (StableHLO).

  python -m ract_jax.export --workdir=W [--out=W/export] [--platforms=cpu[,cuda,...]]

writes into OUT:
  scores.jax_exported   `jax.export.Exported`, serialized: float32 `x [b, n_items]` (x > 0 where
                        the user interacted with the item; any batch size b) -> float32
                        `[b, n_items]` scores (logits; the user's own items are not masked). The
                        parameters are constants inside it.
  vocabulary.txt        raw item ids, line i = column i
  export.json           what the artifact is: model.json's content, input, output, jax version

Loading it needs only jax and numpy (not this package, not its training code):

  import jax, numpy as np
  exp = jax.export.deserialize(open("OUT/scores.jax_exported", "rb").read())
  vocab = open("OUT/vocabulary.txt", encoding="utf-8").read().splitlines()
  col = {item: i for i, item in enumerate(vocab)}
  x = np.zeros((1, len(vocab)), np.float32)
  x[0, [col["1193"], col["661"]]] = 1                       # one user's history
  scores = np.where(x > 0, -np.inf, np.asarray(exp.call(x)))  # leave out the seen items
  top10 = [vocab[i] for i in np.argsort(-scores[0], kind="stable")[:10]]

The function inside is `evaluate.actor_score_fn` (the evaluation's scoring) on the entries of x,
so the scores equal `Recommender.scores` up to float rounding. It runs on the platforms it was
exported for (`--platforms`; default the current backend).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from typing import Sequence

import jax
import jax.numpy as jnp

from ract_jax import evaluate, model_io
from ract_jax.actors import sparse_layer
from ract_jax.data import atomic_dir
from ract_jax.device import batches
from ract_jax.recommend import fail

ARTIFACT = "scores.jax_exported"
EXPORT_DIR = "export"


def dense_entries(x: jax.Array) -> batches.Entries:
  """The `batches.Entries` of a dense `[b, M]` input (b may be symbolic), row by row.

  The columns are padded to a multiple of the sparse layer's chunk, so that the entry capacity
  b * M' is a multiple of it for every b (the layer's chunking needs that decided at export).
  """
  b, m = x.shape
  chunk = sparse_layer.DEFAULT_CHUNK
  width = -(-m // chunk) * chunk
  flat = (jnp.pad(x, ((0, 0), (0, width - m))) > 0).reshape(-1)
  cap = flat.shape[0]
  idx = jnp.arange(cap, dtype=jnp.int32)
  target = jnp.where(flat, jnp.cumsum(flat.astype(jnp.int32)) - 1, cap)  # Compacted position.
  seg = jnp.zeros(cap, jnp.int32).at[target].set(idx // width, mode="drop")
  item = jnp.zeros(cap, jnp.int32).at[target].set(idx % width, mode="drop")
  counts = jnp.sum(x > 0, axis=1).astype(jnp.int32)
  return batches.Entries(seg=seg, item=item, valid=idx < jnp.sum(counts), counts=counts,
                         users=jnp.arange(b, dtype=jnp.int32))


def scoring_function(model: model_io.SavedModel):
  """`x [b, M] -> scores [b, M]` of the saved model, parameters closed over (jitted)."""
  score = evaluate.actor_score_fn(model.actor_config)
  params = jax.tree.map(jnp.asarray, model.params)

  def scores(x):
    entries = dense_entries(x)
    return score(params, entries, batches.dense_rows(entries, model.n_items))

  return jax.jit(scores)


def export_model(model: model_io.SavedModel, platforms: Sequence[str] | None = None):
  """The `jax.export.Exported` of the model's scoring function, batch size symbolic."""
  b, = jax.export.symbolic_shape("b")
  spec = jax.ShapeDtypeStruct((b, model.n_items), jnp.float32)
  return jax.export.export(scoring_function(model),
                           platforms=tuple(platforms) if platforms else None)(spec)


def write_export(workdir: str, out: str | None = None,
                 platforms: Sequence[str] | None = None) -> str:
  """Exports the model of `workdir` into `out` (default `<workdir>/export`), atomically.

  Returns:
    The output directory.
  Raises:
    model_io.ModelError: no usable model in `workdir`.
  """
  model = model_io.read(workdir)
  exported = export_model(model, platforms)
  out = os.path.abspath(out or os.path.join(os.path.abspath(workdir), EXPORT_DIR))
  info = {"artifact": ARTIFACT, "vocabulary": model_io.VOCABULARY_FILE,
          "input": f"float32 x [b, {model.n_items}]: x > 0 where the user interacted with the item",
          "output": f"float32 [b, {model.n_items}]: scores (logits), seen items not masked",
          "platforms": list(exported.platforms), "jax_version": jax.__version__,
          "model": model.info}

  def fill(tmp):
    with open(os.path.join(tmp, ARTIFACT), "wb") as f:
      f.write(exported.serialize())
    shutil.copyfile(os.path.join(model.path, model_io.VOCABULARY_FILE),
                    os.path.join(tmp, model_io.VOCABULARY_FILE))
    with open(os.path.join(tmp, "export.json"), "w", encoding="utf-8") as f:
      json.dump(info, f, indent=2)
      f.write("\n")

  atomic_dir.write_atomically(out, fill)
  return out


def main(argv: Sequence[str] | None = None) -> None:
  ap = argparse.ArgumentParser(prog="python -m ract_jax.export",
                               description="Exports a trained model's scoring function "
                                           "(jax.export, StableHLO) with its vocabulary.")
  ap.add_argument("--workdir", required=True, help="a training run's workdir (its model/ folder)")
  ap.add_argument("--out", default=None, help="output folder (default: <workdir>/export)")
  ap.add_argument("--platforms", default="",
                  help="comma-separated, e.g. cpu,cuda (default: the current backend)")
  args = ap.parse_args(argv)
  platforms = [p for p in args.platforms.split(",") if p] or None
  try:
    out = write_export(args.workdir, args.out, platforms)
  except (model_io.ModelError, ValueError, OSError) as e:
    fail(str(e))
  print(f"wrote {out}: {ARTIFACT}, {model_io.VOCABULARY_FILE}, export.json")


if __name__ == "__main__":
  main()
