"""Shared text parsing for the raw readers: lines, bad-line reports, pandas tables and id columns.

Every reader returns the same DataFrame (`frame`): one row per raw interaction, in raw file order,
columns
  user:   the raw user id. int64 for integer ids; for string ids (MSD, or `id_type='str'`) a
          `Categorical` whose categories are sorted in string order (memory: int codes instead of
          one Python string per row).
  item:   the raw item id, same convention.
  rating: float64; the rating / play count, NaN where the format has none.

Parsing is vectorised (pandas' C parser, numpy). When the fast parse fails or yields missing values,
a second, line-by-line pass (`find_bad_line`) finds the first offending line, and the `DataError`
names the file, the 1-based line number and what was expected there.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from ract_jax.data.errors import DataError

INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
CHUNK_ROWS = 4_000_000  # Rows per pandas chunk (bounds the memory of the big string-id files).
STR_ID = "strid"  # The `read_table` dtype of a string-id column.


# ---- Reporting the first bad line (the slow, second pass; only after the fast parse failed). ----


@dataclasses.dataclass(frozen=True)
class Layout:
  """What a line of a delimited file must look like (used to report the first bad line).

  Attributes:
    desc: for messages, e.g. "4 comma-separated fields userId,movieId,rating,timestamp".
    split: line -> fields.
    n_fields: exact field count, or None: at least `min_fields`.
    min_fields: the least number of fields.
    kinds: 0-based column -> 'int' | 'float' | 'str'.
    header_lines: lines skipped at the top.
  """

  desc: str
  split: Callable[[str], list]
  n_fields: int | None
  min_fields: int
  kinds: dict
  header_lines: int = 0


def split_on(sep: str) -> Callable[[str], list]:
  return lambda line: line.split(sep)


def split_ws(line: str) -> list:
  return line.split()


def field_problem(value: str, kind: str) -> str | None:
  """None if `value` is a valid 'int' / 'float' / 'str' field, else what it should be."""
  if kind == "int":
    return None if INT_RE.match(value) else "an integer"
  if kind == "float":
    try:
      return None if not math.isnan(float(value)) else "a number"
    except ValueError:
      return "a number"
  return None if value.strip() else "a non-empty id"


def iter_lines(path: str) -> Iterator[tuple[int, str]]:
  """(1-based line number, line without its end of line) for each line of `path`."""
  with open(path, "rb") as f:
    for lineno, raw in enumerate(f, 1):
      yield lineno, raw.decode("utf-8", errors="replace").rstrip("\r\n")


def malformed(path: str, lineno: int, reason: str, expected: str, line: str) -> DataError:
  """The DataError for one bad line: `FILE:LINE: malformed line (reason). Expected ...`."""
  shown = line if len(line) <= 200 else line[:200] + "..."
  return DataError(f"{path}:{lineno}: malformed line ({reason}). Expected {expected}.\n"
                   f"  Line {lineno}: {shown!r}")


def find_bad_line(path: str, layout: Layout) -> tuple[int, str, str] | None:
  """First line that does not match `layout`: (1-based line number, reason, line), or None."""
  for lineno, line in iter_lines(path):
    if lineno <= layout.header_lines or not line:
      continue
    fields = layout.split(line)
    n = len(fields)
    if (layout.n_fields is not None and n != layout.n_fields) or n < layout.min_fields:
      want = layout.n_fields if layout.n_fields is not None else f"at least {layout.min_fields}"
      return lineno, f"expected {want} fields, found {n}", line
    for col, kind in layout.kinds.items():
      problem = field_problem(fields[col], kind)
      if problem:
        return lineno, f"field {col + 1} should be {problem}, found {fields[col]!r}", line
  return None


def bad_data(path: str, layout: Layout, cause: BaseException | str | None = None) -> DataError:
  """A DataError naming the first bad line of `path` (or, failing that, the parser's complaint)."""
  found = find_bad_line(path, layout)
  if found is not None:
    lineno, reason, line = found
    return malformed(path, lineno, reason, layout.desc, line)
  return DataError(f"{path}: could not parse the file as {layout.desc}: {cause}")


# ---- Id columns and the reader DataFrame. --------------------------------------------------------


def check_id_type(id_type: str) -> None:
  if id_type not in ("int", "str"):
    raise DataError(f"config.data.id_type must be 'int' or 'str', got {id_type!r} "
                    f"(--config.data.id_type).")


def id_type_of(data_config) -> str:
  """`config.data.id_type` ('int' when absent), checked."""
  id_type = data_config.get("id_type", "int")
  check_id_type(id_type)
  return id_type


def sorted_categorical(values) -> pd.Categorical:
  """A Categorical of string ids whose categories are in string (code point) order."""
  cat = pd.Categorical(values)
  if not cat.categories.is_monotonic_increasing:
    cat = cat.reorder_categories(cat.categories.sort_values())
  return cat


def as_id_type(col, id_type: str):
  """Integer ids stay as they are; with id_type 'str', ids become a sorted-category Categorical."""
  if id_type != "str":
    return col
  if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype):
    cat = pd.Categorical(col)
    if cat.categories.dtype.kind not in "iuf":
      return sorted_categorical(cat)
  return sorted_categorical(np.asarray(col).astype(str))


def frame(user, item, rating=None, id_type: str = "") -> pd.DataFrame:
  """The reader DataFrame (see the module docstring); `id_type` 'str' converts integer ids."""
  if id_type:
    user, item = as_id_type(user, id_type), as_id_type(item, id_type)
  if rating is None:
    rating = np.full(len(user), np.nan)
  return pd.DataFrame({"user": user, "item": item,
                       "rating": np.asarray(rating, dtype=np.float64)}, copy=False)


def join_chunk_codes(chunk_codes: Sequence[np.ndarray], chunk_sizes: Sequence[int],
                     global_codes: np.ndarray, order: np.ndarray) -> np.ndarray:
  """Codes of ids factorised chunk by chunk, renumbered into one sorted category list.

  Args:
    chunk_codes: per chunk, codes into that chunk's distinct ids.
    chunk_sizes: per chunk, its number of distinct ids.
    global_codes: `[sum(chunk_sizes)]` the code of each chunk's distinct id among all distinct ids
      (the concatenation of the chunks' distinct ids, factorised).
    order: the all-distinct ids' codes in category (sorted) order.

  Returns:
    int32 (int64 beyond 2**31 ids) codes `[sum(len(c))]` into the sorted categories.
  """
  rank = np.empty(len(order), np.int32 if len(order) < 2**31 - 1 else np.int64)
  rank[order] = np.arange(len(order))
  global_codes = rank[global_codes]
  parts, off = [], 0
  for codes, size in zip(chunk_codes, chunk_sizes):
    parts.append(global_codes[off:off + size][codes])
    off += size
  return np.concatenate(parts) if parts else np.zeros(0, rank.dtype)


class StrIds:
  """Accumulates string-id columns chunk by chunk as int codes; joins them with sorted categories.

  pandas' own `dtype='category'` parsing is ~5x slower than object parsing + `pd.factorize` here,
  and an object column of 48M ids would hold 48M Python strings; per chunk only the distinct ids
  survive.
  """

  def __init__(self):
    self.codes, self.uniques = [], []

  def add(self, values: np.ndarray) -> bool:
    """Adds a chunk; False if it has missing values."""
    codes, uniques = pd.factorize(values)
    self.codes.append(codes.astype(np.int32 if len(uniques) < 2**31 - 1 else np.int64))
    self.uniques.append(np.asarray(uniques, dtype=object))
    return not (codes < 0).any()

  def categorical(self) -> pd.Categorical:
    if not self.codes:
      return pd.Categorical(np.zeros(0, dtype=object).astype(str))
    gcodes, guniq = pd.factorize(np.concatenate(self.uniques))
    guniq = np.asarray(guniq, dtype=object)
    order = np.argsort(guniq, kind="stable")  # Python str comparison: code point order.
    codes = join_chunk_codes(self.codes, [len(u) for u in self.uniques], gcodes, order)
    self.codes, self.uniques = [], []
    return pd.Categorical.from_codes(codes, categories=pd.Index(guniq[order]), validate=False)


# ---- Tables through pandas' C parser. ------------------------------------------------------------


def id_dtype(id_type: str):
  """The `read_table` dtype of an id column."""
  return STR_ID if id_type == "str" else np.int64


def read_table(source, path: str, layout: Layout, *, sep: str, usecols: Sequence[int] | None,
               names: Sequence[str], dtypes: dict, skiprows: int = 0,
               engine: str = "c") -> pd.DataFrame:
  """Parses `source` (path or buffer) with pandas in chunks; any failure is reported via `layout`.

  Args:
    source: what pandas reads (a path, or a buffer holding a rewritten copy of `path`).
    path: the file named in error messages.
    layout: what a line must look like (for the first-bad-line report).
    sep, skiprows, engine: as in `pandas.read_csv`.
    usecols: the 0-based columns to read, or None: exactly `len(names)` fields per line (a line
      with more is an error).
    names: the column names, in file order of the columns read.
    dtypes: name -> numpy dtype, or `STR_ID` for string ids (they come back as Categoricals with
      sorted categories).

  Returns:
    DataFrame `[n_rows]` with the columns `names`.

  Raises:
    DataError: the first malformed line, or the parser's complaint.
  """
  str_cols = [n for n in names if dtypes.get(n) == STR_ID]
  pd_dtypes = {n: (object if dtypes[n] == STR_ID else dtypes[n]) for n in names}
  kw = dict(sep=sep, header=None, skiprows=skiprows, usecols=None if usecols is None else
            list(usecols), names=list(names), dtype=pd_dtypes, index_col=False,
            keep_default_na=False, na_values=[""], engine=engine, skip_blank_lines=True,
            chunksize=CHUNK_ROWS)
  if engine == "c":
    kw["encoding_errors"] = "replace"
  acc = {n: StrIds() for n in str_cols}
  num = {n: [] for n in names if n not in acc}
  try:
    with pd.read_csv(source, **kw) as reader:
      for chunk in reader:
        for name in names:
          col = chunk[name].to_numpy()
          if name in acc:
            ok = acc[name].add(col)
          else:
            ok = not (col.dtype.kind == "f" and np.isnan(col).any())
            num[name].append(col)
          if not ok:
            raise bad_data(path, layout, f"missing values in column {name!r}")
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise bad_data(path, layout, e) from None
  cols = {}
  for name in names:
    if name in acc:
      cols[name] = acc[name].categorical()
    else:
      parts = num[name]
      cols[name] = np.concatenate(parts) if parts else np.zeros(0, pd_dtypes[name])
      num[name] = None
  return pd.DataFrame(cols, copy=False)
