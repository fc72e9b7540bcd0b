"""Users' histories in raw ids -> rows of item indices of a saved model (what fold-in reads).

  from_dict(model, {user: [raw item id, ...]}) -> Histories
  read_tsv(path, model) -> Histories         lines `user<TAB>item[<TAB>rating]`, raw ids; a first
                                             line `user<TAB>item[<TAB>rating]` is a header

The preprocessing is the one the processed data applied (`model.json`'s `preprocessing`): ids
compared as the reader wrote them (`SavedModel.item_index`), rows with a rating at or below
`rating_threshold` dropped (only where the model has a threshold and the file a rating column),
each (user, item) pair counted once (the first kept), items the model does not know ignored and
counted. Vectorised: pandas' C parser and numpy, no Python step per interaction.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping

import numpy as np
import pandas as pd

from ract_jax.data import textio
from ract_jax.data.csr import CSR
from ract_jax.data.errors import DataError
from ract_jax.model_io import SavedModel

EXPECTED = "user<TAB>item or user<TAB>item<TAB>rating (raw ids; a header line user<TAB>item allowed)"


@dataclasses.dataclass(frozen=True)
class Histories:
  """Users and their rows of item indices.

  Attributes:
    users: the user keys, row order.
    items: CSR `[len(users), n_items]` of item indices, each row in the order given (first
      occurrence of each item).
    n_unknown: interactions with an item the model does not know (ignored).
    n_below_threshold: interactions dropped by the model's rating threshold.
  """

  users: list
  items: CSR
  n_unknown: int = 0
  n_below_threshold: int = 0

  def notes(self) -> list[str]:
    """What was left out, in words (empty when nothing was)."""
    out = []
    if self.n_unknown:
      out.append(f"{self.n_unknown:,} interactions with items the model does not know were "
                 "ignored")
    if self.n_below_threshold:
      out.append(f"{self.n_below_threshold:,} interactions at or below the rating threshold were "
                 "dropped")
    return out


def _build(model: SavedModel, users: list, rows: np.ndarray, items: np.ndarray,
           keep: np.ndarray | None = None) -> Histories:
  """Rows from (row, item index) pairs: threshold mask `keep`, unknown items out, duplicates out."""
  below = 0 if keep is None else int((~keep).sum())
  if keep is not None:
    rows, items = rows[keep], items[keep]
  known = items >= 0
  rows, items = rows[known], items[known]
  m = model.n_items
  first = np.sort(np.unique(rows.astype(np.int64) * m + items, return_index=True)[1])
  csr = CSR.from_pairs(rows[first], items[first], len(users), m)
  return Histories(users=users, items=csr, n_unknown=int((~known).sum()), n_below_threshold=below)


def from_dict(model: SavedModel, histories: Mapping) -> Histories:
  """Histories from `{user: sequence of raw item ids}` (rows in the mapping's order).

  Raises:
    ValueError: a history that is not a sequence of ids (the message names the user).
  """
  users = list(histories)
  for user in users:
    h = histories[user]
    if isinstance(h, (str, bytes)) or not hasattr(h, "__len__"):
      raise ValueError(f"histories[{user!r}] must be a sequence of raw item ids (a list, tuple or "
                       f"array), got {type(h).__name__}.")
  lengths = np.fromiter((len(histories[u]) for u in users), np.int64, len(users))
  flat = list(itertools.chain.from_iterable(histories[u] for u in users))
  rows = np.repeat(np.arange(len(users), dtype=np.int64), lengths)
  return _build(model, users, rows, model.item_index(flat))


def _layout(path: str) -> tuple[int, int]:
  """(fields per line, header lines) from the first non-empty line of `path`."""
  for lineno, line in textio.iter_lines(path):
    if not line.strip():
      continue
    fields = line.split("\t")
    if [f.strip().lower() for f in fields[:2]] == ["user", "item"]:
      if len(fields) > 3 or (len(fields) == 3 and fields[2].strip().lower() != "rating"):
        raise textio.malformed(path, lineno, "a header other than user<TAB>item[<TAB>rating]",
                               EXPECTED, line)
      return len(fields), lineno
    if len(fields) not in (2, 3):
      raise textio.malformed(path, lineno, f"{len(fields)} tab-separated fields", EXPECTED, line)
    return len(fields), lineno - 1
  raise DataError(f"{path}: no interactions (the file is empty); expected lines {EXPECTED}.")


def read_tsv(path: str, model: SavedModel) -> Histories:
  """Reads a file of interactions in raw ids (rows in order of each user's first line).

  Raises:
    DataError: a missing or empty file, or a malformed line (the message names the file, the
      line and what was expected).
  """
  try:
    n_fields, header = _layout(path)
  except OSError as e:
    raise DataError(f"{path}: cannot read the input file ({e.strerror or e}).") from None
  names = ["user", "item", "rating"][:n_fields]
  kinds = {0: "str", 1: "str", 2: "float"}
  layout = textio.Layout(f"{n_fields} tab-separated fields: {EXPECTED}", textio.split_on("\t"),
                         n_fields, n_fields, {c: kinds[c] for c in range(n_fields)},
                         header_lines=header)
  dtypes = {"user": textio.STR_ID, "item": textio.STR_ID, "rating": np.float64}
  df = textio.read_table(path, path, layout, sep="\t", usecols=None, names=names,
                         dtypes={n: dtypes[n] for n in names}, skiprows=header)
  if not len(df):
    raise DataError(f"{path}: no interactions (only a header); expected lines {EXPECTED}.")
  user_codes = df["user"].cat.codes.to_numpy()
  order = pd.unique(user_codes)  # Users in order of their first line.
  row_of = np.empty(len(df["user"].cat.categories), np.int64)
  row_of[order] = np.arange(len(order))
  users = df["user"].cat.categories.to_numpy(dtype=object)[order].tolist()
  item_cat = df["item"].cat
  items = model.item_index(item_cat.categories.to_numpy(dtype=object))[item_cat.codes.to_numpy()]
  keep = None
  if "rating" in df and model.rating_threshold is not None:
    keep = df["rating"].to_numpy() > model.rating_threshold
  return _build(model, users, row_of[user_codes], items, keep)
