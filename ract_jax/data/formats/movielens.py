"""MovieLens ratings files: ML-20M `ratings.csv`, ML-1M `ratings.dat`, ML-100K `u.data`."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from ract_jax.data import textio
from ract_jax.data.errors import DataError
from ract_jax.data.formats.spec import Format, Source, one_file

# The four columns of every MovieLens ratings file and their types.
_NAMES = ["user", "item", "rating", "timestamp"]
_DTYPES = {"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64}
_KINDS = {0: "int", 1: "int", 2: "float", 3: "int"}


def _read(source, path: str, layout: textio.Layout, sep: str, id_type: str,
          skiprows: int = 0) -> pd.DataFrame:
  df = textio.read_table(source, path, layout, sep=sep, usecols=None, names=_NAMES, dtypes=_DTYPES,
                         skiprows=skiprows)
  return textio.frame(df["user"], df["item"], df["rating"], id_type=id_type)


def read_ml20m(path: str, id_type: str = "int") -> pd.DataFrame:
  """MovieLens-20M `ratings.csv` (also ml-latest(-small), ML-25M): `userId,movieId,rating,timestamp`.

  Args:
    path: the `ratings.csv` file (with its header line).
    id_type: 'int' (default) or 'str' (ids then sort as strings).

  Returns:
    DataFrame `[n_rows]` with columns user, item, rating (`textio.frame`).
  """
  layout = textio.Layout("4 comma-separated fields userId,movieId,rating,timestamp (integer ids, "
                         "numeric rating, integer timestamp) after the header line",
                         textio.split_on(","), 4, 4, _KINDS, header_lines=1)
  with open(path, "rb") as f:
    first = f.readline().decode("utf-8", errors="replace").strip()
  if [h.strip() for h in first.split(",")][:3] != ["userId", "movieId", "rating"]:
    raise DataError(f"{path}:1: expected the header line 'userId,movieId,rating,timestamp' "
                    f"(MovieLens ratings.csv), found {first[:200]!r}.")
  return _read(path, path, layout, ",", id_type, skiprows=1)


def read_ml1m(path: str, id_type: str = "int") -> pd.DataFrame:
  """MovieLens-1M `ratings.dat`: `UserID::MovieID::Rating::Timestamp`, no header.

  Args and returns as `read_ml20m`.
  """
  layout = textio.Layout("4 fields UserID::MovieID::Rating::Timestamp (integers)",
                         textio.split_on("::"), 4, 4, _KINDS)
  with open(path, "rb") as f:
    data = f.read()
  # '::' is a multi-character separator, which only pandas' slow Python engine takes; the file is
  # small (24 MB), so swap it for a tab and use the C parser (a stray tab: a field-count error).
  return _read(io.BytesIO(data.replace(b"::", b"\t")), path, layout, "\t", id_type)


def read_ml100k(path: str, id_type: str = "int") -> pd.DataFrame:
  """MovieLens-100K `u.data`: tab-separated `user item rating timestamp`, no header.

  Args and returns as `read_ml20m`.
  """
  layout = textio.Layout("4 tab-separated integer fields: user item rating timestamp",
                         textio.split_on("\t"), 4, 4, _KINDS)
  return _read(path, path, layout, "\t", id_type)


_GROUPLENS = "https://grouplens.org/datasets/movielens"
FORMATS = (
    Format("ml20m", one_file(read_ml20m),
           Source("MovieLens-20M", "ratings.csv",
                  f"{_GROUPLENS}/20m/ (ml-20m.zip; the file is ml-20m/ratings.csv)"),
           default_file="ratings.csv"),
    Format("ml1m", one_file(read_ml1m),
           Source("MovieLens-1M", "ratings.dat",
                  f"{_GROUPLENS}/1m/ (ml-1m.zip; the file is ml-1m/ratings.dat)"),
           default_file="ratings.dat"),
    Format("ml100k", one_file(read_ml100k),
           Source("MovieLens-100K", "u.data",
                  f"{_GROUPLENS}/100k/ (ml-100k.zip; the file is ml-100k/u.data)"),
           default_file="u.data"),
)
