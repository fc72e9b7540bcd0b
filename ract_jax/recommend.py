"""Recommending with a trained model: fold-in of raw histories (Liang et al. 2018), one forward pass.

Python:

  from ract_jax.recommend import Recommender
  rec = Recommender.from_workdir("runs/ml1m")           # reads <workdir>/model/ only
  rec.model_name                                         # 'ract', or 'actor' after stage 1 only
  top = rec.recommend({"u1": ["1193", "661", "914"], "u2": []}, k=10)   # {user: [raw ids]}
  scores, vocabulary = rec.scores({"u1": ["1193", "661"]})              # [1, n_items], ids

Command line (lines `user<TAB>item[<TAB>rating]` in raw ids; output `user<TAB>item,item,...`):

  python -m ract_jax.recommend --workdir=W --input=FILE --k=100 --output=OUT

A history is the set of items a user interacted with, as the model was trained on them: unknown
items are ignored (a warning gives the count), repeated items count once. An empty history gets
the model's output for the empty input (every input value 0: what the network's biases alone
rank first, close to a popularity list). Scoring is the evaluation's (`evaluate.actor_score_fn`:
l2-normalised input, no dropout, z = mu), jitted on JAX's default device; users go in batches
padded to a few fixed sizes (`BATCH_SIZES`) and their entries to power-of-two capacities, so a
program compiles once per (batch size, capacity, k) and is reused.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ract_jax import evaluate, histories as histories_lib, model_io
from ract_jax.data.errors import DataError
from ract_jax.device import batches

logger = logging.getLogger("ract_jax.recommend")

BATCH_SIZES = (1, 16, 128, 1024)  # Users per program; larger inputs go in batches of the last.
MIN_CAPACITY = 256  # Entries per batch: the next power of two >= the batch's entries, at least this.


def _bucket(n: int) -> int:
  return next((b for b in BATCH_SIZES if b >= n), BATCH_SIZES[-1])


def _capacity(total: int) -> int:
  return max(MIN_CAPACITY, 1 << max(0, int(total) - 1).bit_length())


def batch_entries(csr, start: int, stop: int) -> batches.Entries:
  """The `batches.Entries` (host numpy) of rows `start:stop` of `csr`, padded to fixed sizes.

  Same layout as `batches.gather_entries` builds on device for evaluation: entries row by row in
  stored order, padding entries (seg 0, item 0, invalid) after the real ones, padding rows -1.
  """
  n = stop - start
  size = _bucket(n)
  indptr = csr.indptr[start:stop + 1]
  lo, hi = int(indptr[0]), int(indptr[-1])
  lengths = np.diff(indptr).astype(np.int32)
  cap = _capacity(hi - lo)
  seg = np.zeros(cap, np.int32)
  seg[:hi - lo] = np.repeat(np.arange(n, dtype=np.int32), lengths)
  item = np.zeros(cap, np.int32)
  item[:hi - lo] = csr.indices[lo:hi]
  counts = np.zeros(size, np.int32)
  counts[:n] = lengths
  users = np.full(size, -1, np.int32)
  users[:n] = np.arange(n, dtype=np.int32)
  return batches.Entries(seg=seg, item=item, valid=np.arange(cap) < hi - lo, counts=counts,
                         users=users)


class Recommender:
  """A saved model ready to score raw histories (see the module docstring).

  Attributes:
    model: the `model_io.SavedModel`.
    model_name: 'ract' (the final RaCT model) or 'actor' (the pre-trained actor: a run of stage 1
      only, or one stopped before its end).
    description: one line saying which model this is (also logged when loaded).
    vocabulary: raw item ids, position = column of `scores`.
    traces: how many programs were traced (compiled) so far.
    last_unknown: items ignored as unknown in the last call.
  """

  def __init__(self, model: model_io.SavedModel):
    self.model = model
    self.model_name = model.name
    self.description = model.describe()
    self.vocabulary = model.vocabulary
    self._items = np.asarray(model.vocabulary, dtype=object)
    self._params = jax.device_put(model.params)
    self._score = evaluate.actor_score_fn(model.actor_config)
    self._top_k = jax.jit(self._top_k_fn, static_argnames=("k", "exclude_seen"))
    self._logits = jax.jit(self._logits_fn)
    self.traces = 0
    self.last_unknown = 0

  @classmethod
  def from_workdir(cls, workdir: str) -> "Recommender":
    """The model of a training workdir (`<workdir>/model/`; nothing else is read).

    Raises:
      model_io.ModelError: no such workdir, no finished model there, or a damaged model file.
    """
    rec = cls(model_io.read(workdir))
    logger.info("loaded %s", rec.description)
    return rec

  # ---- The jitted programs (one trace per padded shape). ----

  def _logits_fn(self, params, entries):
    self.traces += 1
    return self._score(params, entries, batches.dense_rows(entries, self.model.n_items))

  def _top_k_fn(self, params, entries, k: int, exclude_seen: bool):
    self.traces += 1
    fold = batches.dense_rows(entries, self.model.n_items)
    logits = self._score(params, entries, fold)
    if exclude_seen:  # As in evaluation: the fold-in items at -inf.
      logits = jnp.where(fold > 0, -jnp.inf, logits)
    return jax.lax.top_k(logits, k)

  def _batches(self, rows: histories_lib.Histories):
    n = len(rows.users)
    for start in range(0, n, BATCH_SIZES[-1]):
      stop = min(n, start + BATCH_SIZES[-1])
      yield start, stop, batch_entries(rows.items, start, stop)

  # ---- Public API. ----

  def histories(self, histories: Mapping[object, Sequence]) -> histories_lib.Histories:
    """`{user: raw item ids}` as rows of item indices, warning about unknown items."""
    rows = histories_lib.from_dict(self.model, histories)
    self._note(rows)
    return rows

  def read(self, path: str) -> histories_lib.Histories:
    """A file of `user<TAB>item[<TAB>rating]` lines as rows (`histories.read_tsv`), warning about
    what was left out.

    Raises:
      DataError: a missing, empty or malformed file (the message names the file and line).
    """
    rows = histories_lib.read_tsv(path, self.model)
    self._note(rows)
    return rows

  def _note(self, rows: histories_lib.Histories) -> None:
    self.last_unknown = rows.n_unknown
    for note in rows.notes():
      logger.warning("%s.", note)

  def recommend(self, histories: Mapping[object, Sequence], k: int = 100,
                exclude_seen: bool = True) -> dict:
    """The top-k items of each user, best first.

    Args:
      histories: `{user: sequence of raw item ids}`; unknown ids are ignored (and counted).
      k: how many items per user (1 <= k <= n_items).
      exclude_seen: leave out the items of the user's history (as the evaluation does).

    Returns:
      `{user: [raw item id, ...]}` in the order of `histories`, k ids each (fewer only when
      `exclude_seen` and the user has seen all but fewer than k items).
    """
    return self.recommend_rows(self.histories(histories), k, exclude_seen)

  def recommend_rows(self, rows: histories_lib.Histories, k: int = 100,
                     exclude_seen: bool = True) -> dict:
    """`recommend` on rows already mapped (`read`, `histories`)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (
        1 <= k <= self.model.n_items):
      raise ValueError(f"k={k!r}: expected an integer from 1 to the model's {self.model.n_items} "
                       "items.")
    out = {}
    for start, stop, entries in self._batches(rows):
      values, top = jax.device_get(self._top_k(self._params, entries, k=int(k),
                                               exclude_seen=bool(exclude_seen)))
      n_ok = np.isfinite(values[:stop - start]).sum(axis=1)
      names = self._items[top[:stop - start]]
      for user, row, n in zip(rows.users[start:stop], names, n_ok.tolist()):
        out[user] = row[:n].tolist()
    return out

  def scores(self, histories: Mapping[object, Sequence]) -> tuple[np.ndarray, tuple]:
    """The model's scores (logits, seen items not masked) of every item for every user.

    Returns:
      (float32 `[len(histories), n_items]`, rows in the order of `histories`; the vocabulary:
      raw item ids, position = column).
    """
    rows = self.histories(histories)
    out = np.zeros((len(rows.users), self.model.n_items), np.float32)
    for start, stop, entries in self._batches(rows):
      out[start:stop] = jax.device_get(self._logits(self._params, entries))[:stop - start]
    return out, self.vocabulary


# ---- Command line. ----------------------------------------------------------------------------


def write_lists(path: str, lists: dict) -> None:
  """Writes `user<TAB>item,item,...` lines atomically (a `.tmp` file, then renamed)."""
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    for user, items in lists.items():
      f.write(f"{user}\t{','.join(map(str, items))}\n")
  os.replace(tmp, path)


def parse_args(argv: Sequence[str] | None):
  ap = argparse.ArgumentParser(
      prog="python -m ract_jax.recommend",
      description="Top-k recommendations of a trained model for users' raw histories "
                  "(docs/serving.md).")
  ap.add_argument("--workdir", required=True, help="a training run's workdir (its model/ folder)")
  ap.add_argument("--input", required=True,
                  help="lines user<TAB>item[<TAB>rating] in raw ids (header user<TAB>item allowed)")
  ap.add_argument("--output", required=True, help="written: lines user<TAB>item,item,... best first")
  ap.add_argument("--k", type=int, default=100, help="items per user (default 100)")
  ap.add_argument("--include_seen", action="store_true",
                  help="may recommend items of the user's own history (default: left out)")
  return ap.parse_args(argv)


def fail(message: str) -> None:
  """The one-line error of the command lines: `error: ...` on stderr, exit status 1."""
  print("error: " + " ".join(str(message).split()), file=sys.stderr)
  sys.exit(1)


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(argv)
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
  t0 = time.perf_counter()
  try:
    rec = Recommender.from_workdir(args.workdir)
    print(rec.description, file=sys.stderr)
    rows = rec.read(args.input)
    lists = rec.recommend_rows(rows, args.k, exclude_seen=not args.include_seen)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
      raise DataError(f"{args.output}: cannot write the output: no directory {out_dir}.")
    write_lists(args.output, lists)
  except (model_io.ModelError, DataError, ValueError, OSError) as e:
    fail(str(e))
  print(f"wrote {args.output}: top {args.k} of {len(lists):,} users "
        f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
  main()
