"""A user's own data: a generic delimited file, or an adjacency list (`user item item ...`)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ract_jax.data import textio
from ract_jax.data.errors import DataError
from ract_jax.data.formats.spec import Format, Source, one_file

_DELIMITERS = {"tab": "\t", "space": " ", "comma": ",", "whitespace": None}


def _delimiter(name: str) -> str | None:
  """The literal delimiter for config.data.delimiter (None = runs of whitespace)."""
  if name in _DELIMITERS:
    return _DELIMITERS[name]
  if name == "":
    raise DataError("config.data.delimiter is empty; use 'tab', 'space', 'whitespace', or a literal "
                    "delimiter (--config.data.delimiter=...).")
  return name.encode().decode("unicode_escape") if "\\" in name else name


def read_delimited(path: str, *, delimiter: str = ",", header: bool = False, user_col: int = 0,
                   item_col: int = 1, rating_col: int = -1, id_type: str = "int") -> pd.DataFrame:
  """A generic delimited file: one interaction per line, ids (and optionally a rating) in columns.

  Args:
    path: the file.
    delimiter: 'tab', 'space', 'comma', 'whitespace' (runs of spaces/tabs) or a literal delimiter.
    header: skip the first line.
    user_col, item_col: 0-based columns of the user and item ids.
    rating_col: 0-based column of the rating, or -1 for none (rating = NaN).
    id_type: 'int' (ids must be integers; numeric sort) or 'str' (string sort).

  Returns:
    DataFrame with columns user, item, rating.
  """
  textio.check_id_type(id_type)
  sep = _delimiter(delimiter)
  cols = {"user": user_col, "item": item_col}
  if rating_col >= 0:
    cols["rating"] = rating_col
  if len(set(cols.values())) != len(cols) or min(cols.values()) < 0:
    raise DataError(f"config.data.user_col/item_col/rating_col must be distinct column numbers >= 0 "
                    f"(rating_col may be -1), got {cols}.")
  kind = "int" if id_type == "int" else "str"
  kinds = {user_col: kind, item_col: kind}
  if rating_col >= 0:
    kinds[rating_col] = "float"
  sep_desc = {None: "whitespace", "\t": "tab", " ": "space", ",": "comma"}.get(sep, repr(sep))
  layout = textio.Layout(
      f"{sep_desc}-separated fields with the user id in column {user_col}, the item id in column "
      f"{item_col}" + (f", a numeric rating in column {rating_col}" if rating_col >= 0 else "") +
      " (0-based columns)", textio.split_ws if sep is None else textio.split_on(sep), None,
      max(cols.values()) + 1, kinds, header_lines=int(bool(header)))
  by_pos = sorted(cols.items(), key=lambda kv: kv[1])
  names = [k for k, _ in by_pos]
  dtypes = {"user": textio.id_dtype(id_type), "item": textio.id_dtype(id_type),
            "rating": np.float64}
  if sep is None:
    pd_sep, engine = r"\s+", "c"
  elif len(sep) == 1:
    pd_sep, engine = sep, "c"
  else:
    pd_sep, engine = re.escape(sep), "python"
  # usecols by position with names for just those columns: pandas wants names for all used columns.
  df = textio.read_table(path, path, layout, sep=pd_sep, usecols=[c for _, c in by_pos],
                         names=names, dtypes={n: dtypes[n] for n in names},
                         skiprows=int(bool(header)), engine=engine)
  return textio.frame(df["user"], df["item"], df["rating"] if "rating" in df else None)


def _first_non_integer(path: str, expected: str) -> DataError | None:
  """The DataError for the first token of an adjacency list that is not an integer id."""
  for lineno, line in textio.iter_lines(path):
    for j, tok in enumerate(line.split()):
      if not textio.INT_RE.match(tok):
        return textio.malformed(path, lineno, f"token {j + 1} should be an integer id, found "
                                f"{tok!r}", expected, line)
  return None


def read_adjacency(path: str, id_type: str = "int") -> pd.DataFrame:
  """An adjacency list (LightGCN / NGCF `train.txt`): each line `user item item ...`.

  Whitespace-separated; each line expands to (user, item) pairs in line order. A line holding only a
  user id adds nothing. There are no ratings (rating = NaN).

  Args:
    path: the file.
    id_type: 'int' (default) or 'str'.

  Returns:
    DataFrame with columns user, item, rating (all NaN).
  """
  textio.check_id_type(id_type)
  expected = (f"whitespace-separated {'integer ' if id_type == 'int' else ''}ids: a user id then "
              f"its item ids")
  with open(path, "rb") as f:
    text = f.read().decode("utf-8", errors="replace")
  # One Python step per line (= per user; the item tokens are converted in bulk below).
  users, counts, tokens = [], [], []
  for line in text.splitlines():
    toks = line.split()
    if toks:
      users.append(toks[0])
      counts.append(len(toks) - 1)
      tokens.extend(toks[1:])
  del text
  counts = np.asarray(counts, dtype=np.int64)
  if id_type == "str":
    user = np.repeat(np.asarray(users, dtype=object), counts)
    return textio.frame(textio.sorted_categorical(user),
                        textio.sorted_categorical(np.asarray(tokens, dtype=object)))
  try:
    user_ids = np.asarray(users).astype(np.int64) if users else np.zeros(0, np.int64)
    items = np.asarray(tokens).astype(np.int64) if tokens else np.zeros(0, np.int64)
  except (ValueError, OverflowError) as e:
    error = _first_non_integer(path, expected)
    raise (error or DataError(f"{path}: could not parse the adjacency list: {e}")) from None
  return textio.frame(np.repeat(user_ids, counts), items)


def _ratings_column(data_config) -> bool:
  return int(data_config.rating_col) >= 0


def _no_ratings(data_config) -> bool:
  del data_config
  return False


def _read_delimited_config(files, data_config) -> pd.DataFrame:
  return read_delimited(files[0], delimiter=data_config.delimiter, header=bool(data_config.header),
                        user_col=int(data_config.user_col), item_col=int(data_config.item_col),
                        rating_col=int(data_config.rating_col),
                        id_type=textio.id_type_of(data_config))


FORMATS = (
    Format("delimited", _read_delimited_config,
           Source("delimited interactions", None, "your own data (one interaction per line)"),
           cache_keys=("delimiter", "header", "user_col", "item_col", "rating_col"),
           has_ratings=_ratings_column),
    Format("adjacency", one_file(read_adjacency),
           Source("adjacency list", None,
                  "your own data, or a LightGCN-style train.txt (`user item item ...` per line)"),
           has_ratings=_no_ratings),
)
