"""Netflix Prize ratings: the original `training_set/mv_*.txt` or Kaggle's `combined_data_*.txt`.

Both layouts share one grammar (a `MOVIEID:` line, then `CustomerID,Rating,Date` lines) and give
the same raw order: movies ascending, customers in file order (RaCT's `munge_netflix_data`).
"""

from __future__ import annotations

import io
import os
import re
from typing import Sequence

import numpy as np
import pandas as pd

from ract_jax.data import blockio, textio
from ract_jax.data.errors import DataError
from ract_jax.data.formats.spec import Format, Source, absolute

_MOVIE_RE = re.compile(r"^\s*(\d+)\s*:\s*$")
_GRAMMAR = ("a 'MOVIEID:' line (e.g. '1:') starting each movie's block, then lines of 3 "
            "comma-separated fields CustomerID,Rating,Date (integer CustomerID and Rating)")


def _number(name: str) -> int:
  return int(re.sub(r"\D", "", name) or 0)


def resolve_netflix_files(fmt: Format, raw_path: str) -> list[str]:
  """The Netflix files to read, in raw order.

  Accepts (detected in this order): a folder holding `training_set/` (the original Netflix Prize
  layout); a folder of `mv_XXXXXXX.txt` files, read in movie-id order; a folder of Kaggle
  `combined_data_{1..4}.txt`, read in file-number order; a single file of either kind.

  Returns:
    Absolute paths, in reading order.

  Raises:
    DataError: nothing usable was found.
  """
  path = absolute(fmt, raw_path)
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path):
    raise fmt.missing(path, raw_path)
  sub = os.path.join(path, "training_set")
  if os.path.isdir(sub):
    path = sub
  names = os.listdir(path)
  for pattern in (r"mv_\d+\.txt", r"combined_data_\d+\.txt"):
    found = sorted((n for n in names if re.fullmatch(pattern, n)), key=_number)
    if found:
      return [os.path.join(path, n) for n in found]
  raise fmt.missing(f"{path}/mv_*.txt or {path}/combined_data_*.txt", raw_path, what="files")


class _Malformed(Exception):
  """The fast parse met something else than the grammar; the slow pass finds the line."""


def _parse_block(block: bytes, movie: int | None) -> tuple[pd.DataFrame, np.ndarray, int]:
  """Parses one block of `MOVIEID:` / `CustomerID,Rating,Date` lines (vectorised).

  Args:
    block: bytes ending with a newline.
    movie: the movie id in force at the start of the block (None before the first header).

  Returns:
    (DataFrame of user/rating for the data lines, movie id per data line, movie id at the end).
  """
  arr = np.frombuffer(block, dtype=np.uint8)
  ends = np.flatnonzero(arr == 10)
  starts = np.empty_like(ends)
  starts[0] = 0
  starts[1:] = ends[:-1] + 1
  last = np.maximum(ends - 1, 0)
  ends_eff = ends - ((ends > starts) & (arr[last] == 13))  # Strip '\r'.
  nonblank = ends_eff > starts
  is_hdr = nonblank & (arr[np.maximum(ends_eff - 1, 0)] == 58)  # Ends with ':'.
  hdr = np.flatnonzero(is_hdr)
  movies = []
  for h in hdr.tolist():
    m = _MOVIE_RE.match(block[starts[h]:ends_eff[h]].decode("utf-8", "replace"))
    if not m:
      raise _Malformed("bad movie line")
    movies.append(int(m.group(1)))
  data_lines = nonblank & ~is_hdr
  # Field count check without parsing the dates: each data line has exactly 2 commas and a
  # non-empty last field.
  n_commas = np.bincount(np.searchsorted(ends, np.flatnonzero(arr == 44)), minlength=len(ends))
  if (data_lines & ((n_commas != 2) | (arr[np.maximum(ends_eff - 1, 0)] == 44))).any():
    raise _Malformed("field count")
  if not data_lines.any():
    empty = pd.DataFrame({"user": np.zeros(0, np.int64), "rating": np.zeros(0)})
    return empty, np.zeros(0, np.int64), (movies[-1] if movies else movie)
  which = np.cumsum(is_hdr)[data_lines]  # 0: before the block's first header.
  if movie is None and (which == 0).any():
    raise _Malformed("data before the first movie line")
  table = np.asarray([-1 if movie is None else movie] + movies, dtype=np.int64)
  line_movie = table[which]
  # Drop the header lines and parse the rest in one go.
  if len(hdr):
    pieces, pos = [], 0
    for h in hdr.tolist():
      pieces.append(block[pos:starts[h]])
      pos = ends[h] + 1
    pieces.append(block[pos:])
    data = b"".join(pieces)
  else:
    data = block
  df = pd.read_csv(io.BytesIO(data), sep=",", header=None, names=["user", "rating", "date"],
                   usecols=[0, 1], dtype={"user": np.int64, "rating": np.float64},
                   index_col=False, keep_default_na=False, na_values=[""], engine="c",
                   skip_blank_lines=True, encoding_errors="replace")
  if len(df) != len(line_movie) or np.isnan(df["rating"].to_numpy()).any():
    raise _Malformed("field count")
  return df, line_movie, (movies[-1] if movies else movie)


def _line_problem(line: str, movie_seen: bool) -> str | None:
  """What is wrong with one non-empty line (None: nothing), given whether a movie line preceded."""
  if line.rstrip().endswith(":"):
    return None if _MOVIE_RE.match(line) else "a movie line must be an integer id followed by ':'"
  if not movie_seen:
    return "a data line before the first 'MOVIEID:' line"
  fields = line.split(",")
  if len(fields) != 3:
    return f"expected 3 fields, found {len(fields)}"
  if not textio.INT_RE.match(fields[0]):
    return f"CustomerID should be an integer, found {fields[0]!r}"
  if textio.field_problem(fields[1], "float"):
    return f"Rating should be a number, found {fields[1]!r}"
  return None if fields[2].strip() else "the Date is empty"


def _bad_line(files: Sequence[str], cause) -> DataError:
  """The DataError naming the first line of `files` outside the grammar."""
  for path in files:
    movie_seen = False
    for lineno, line in textio.iter_lines(path):
      if not line:
        continue
      problem = _line_problem(line, movie_seen)
      if problem:
        return textio.malformed(path, lineno, problem, _GRAMMAR, line)
      movie_seen = movie_seen or line.rstrip().endswith(":")
  return DataError(f"{files[0] if len(files) == 1 else os.path.dirname(files[0])}: could not parse "
                   f"the Netflix data ({_GRAMMAR}): {cause}")


def _check_first_lines(files: Sequence[str]) -> None:
  """Each `mv_*.txt` starts with its movie line (else its rows would join the previous movie)."""
  for path in files:
    if os.path.basename(path).startswith("mv_"):
      with open(path, "rb") as f:
        first = f.readline(256).decode("utf-8", "replace").rstrip("\r\n")
      if not _MOVIE_RE.match(first):
        raise textio.malformed(path, 1, "expected a 'MOVIEID:' line, e.g. '1:', first in a Netflix "
                               "mv_*.txt file", _GRAMMAR, first)


def read_netflix(files: str | Sequence[str], id_type: str = "int") -> pd.DataFrame:
  """Netflix Prize ratings: `training_set/mv_*.txt` or Kaggle `combined_data_*.txt`.

  Args:
    files: the files in raw order (see `resolve_netflix_files`), or `config.data.raw_path` (a
      folder or a file) to resolve.
    id_type: 'int' (default) or 'str'.

  Returns:
    DataFrame with columns user (CustomerID), item (MovieID), rating; rows movie by movie, customers
    in file order (the order of RaCT's `ratings.csv` rewrite).
  """
  if isinstance(files, str):
    files = resolve_netflix_files(FORMATS[0], files)
  _check_first_lines(files)
  users, items, ratings = [], [], []
  movie = None
  try:
    for block in blockio.line_blocks(files):
      df, line_movie, movie = _parse_block(block, movie)
      users.append(df["user"].to_numpy())
      ratings.append(df["rating"].to_numpy())
      items.append(line_movie)
  except Exception as e:  # pylint: disable=broad-except
    raise _bad_line(files, e) from None
  cat = lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt)
  return textio.frame(cat(users, np.int64), cat(items, np.int64), cat(ratings, np.float64),
                      id_type=id_type)


FORMATS = (
    Format("netflix", lambda files, config: read_netflix(files, textio.id_type_of(config)),
           Source("Netflix Prize", "training_set/ or combined_data_{1..4}.txt",
                  "the Netflix Prize data: the original training_set/ folder of mv_*.txt files, or "
                  "Kaggle's \"netflix-prize-data\" (https://www.kaggle.com/datasets/netflix-inc/"
                  "netflix-prize-data; combined_data_1.txt .. combined_data_4.txt)"),
           resolve=resolve_netflix_files),
)
