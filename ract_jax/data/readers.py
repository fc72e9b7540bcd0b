"""Readers for the raw downloads: one small function per format, each returning a DataFrame.

Every reader returns a `pandas.DataFrame` with three columns, one row per raw interaction, in raw file
order:
  user:   the raw user id. int64 for integer ids; for string ids (MSD, or `id_type='str'`) a
          `Categorical` whose categories are sorted in string order (memory: int codes instead of
          one Python string per row).
  item:   the raw item id, same convention.
  rating: float64; the rating / play count, NaN where the format has none.

Parsing is vectorised (pandas' C parser, numpy). When the fast parse fails or yields missing values,
a second, line-by-line pass finds the first offending line and `DataError` names the file, the 1-based
line number and what was expected there.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import re
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd


class DataError(ValueError):
  """Bad or missing input data, or protocol parameters that do not fit the data.

  The message is meant for the person running the program: it names the file (and line) and says
  what to change. Command-line entry points print it without a traceback.
  """


# Where each dataset comes from, for "file not found" messages.
DOWNLOAD_HINTS = {
    "ml20m": ("MovieLens-20M", "ratings.csv",
              "https://grouplens.org/datasets/movielens/20m/ (ml-20m.zip; the file is "
              "ml-20m/ratings.csv)"),
    "netflix": ("Netflix Prize", "training_set/ or combined_data_{1..4}.txt",
                "the Netflix Prize data: the original training_set/ folder of mv_*.txt files, or "
                "Kaggle's \"netflix-prize-data\" (https://www.kaggle.com/datasets/netflix-inc/"
                "netflix-prize-data; combined_data_1.txt .. combined_data_4.txt)"),
    "msd": ("Million Song Dataset taste profile", "train_triplets.txt",
            "http://millionsongdataset.com/tasteprofile/ (train_triplets.txt, unzipped)"),
    "ml1m": ("MovieLens-1M", "ratings.dat",
             "https://grouplens.org/datasets/movielens/1m/ (ml-1m.zip; the file is "
             "ml-1m/ratings.dat)"),
    "ml100k": ("MovieLens-100K", "u.data",
               "https://grouplens.org/datasets/movielens/100k/ (ml-100k.zip; the file is "
               "ml-100k/u.data)"),
    "delimited": ("delimited interactions", None, "your own data (one interaction per line)"),
    "adjacency": ("adjacency list", None,
                  "your own data, or a LightGCN-style train.txt (`user item item ...` per line)"),
}

# The file looked for when raw_path is a folder.
_DEFAULT_FILE = {"ml20m": "ratings.csv", "msd": "train_triplets.txt", "ml1m": "ratings.dat",
                 "ml100k": "u.data"}

FORMATS = ("ml20m", "netflix", "msd", "ml1m", "ml100k", "delimited", "adjacency", "synthetic")

_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_NETFLIX_MOVIE_RE = re.compile(r"^\s*(\d+)\s*:\s*$")
_CHUNK_ROWS = 4_000_000  # Rows per pandas chunk for the big string-id files (MSD).
_BLOCK_BYTES = 64 << 20  # Bytes per block for the byte-level parsers (Netflix, MSD).


# ------------------------------------------------------------------------------------------------
# Paths.
# ------------------------------------------------------------------------------------------------


def _missing(fmt: str, looked_for: str, raw_path: str, what: str = "raw file") -> DataError:
  name, default_file, url = DOWNLOAD_HINTS.get(fmt, (fmt, None, "?"))
  expected = f" (expected: {default_file})" if default_file else ""
  return DataError(
      f"{name} {what} not found{expected}.\n"
      f"  Looked for: {looked_for}\n"
      f"  It is set by --config.data.raw_path=... (currently {raw_path!r}; relative paths are "
      f"taken from the working directory {os.getcwd()}).\n"
      f"  Download: {url}")


def resolve_raw_file(raw_path: str, fmt: str) -> str:
  """Absolute path of a single-file raw dataset.

  Args:
    raw_path: `config.data.raw_path`: the file, or a folder holding the format's usual file name
      (`ratings.csv`, `train_triplets.txt`, `ratings.dat`, `u.data`).
    fmt: `config.data.format`.

  Returns:
    The absolute path of an existing file.

  Raises:
    DataError: the file does not exist (the message says where it was looked for, which config key
      sets it and where to download the dataset).
  """
  if not raw_path:
    raise _missing(fmt, "(nothing: config.data.raw_path is empty)", raw_path)
  path = os.path.abspath(os.path.expanduser(raw_path))
  if os.path.isdir(path) and fmt in _DEFAULT_FILE:
    path = os.path.join(path, _DEFAULT_FILE[fmt])
  if not os.path.isfile(path):
    raise _missing(fmt, path, raw_path)
  return path


def _mv_number(name: str) -> int:
  return int(re.sub(r"\D", "", name) or 0)


def resolve_netflix_files(raw_path: str) -> list[str]:
  """The Netflix files to read, in raw order.

  Accepts (detected in this order):
    - a folder holding `training_set/` (the original Netflix Prize layout),
    - a folder of `mv_XXXXXXX.txt` files (the original `training_set/`), read in movie-id order,
    - a folder of Kaggle `combined_data_{1..4}.txt`, read in file-number order,
    - a single file of either kind.

  Both layouts share one grammar (a `MOVIEID:` line, then `CustomerID,Rating,Date` lines), and both
  give the same raw order: movies ascending, customers in file order (RaCT's `munge_netflix_data`).

  Returns:
    Absolute paths, in reading order.

  Raises:
    DataError: nothing usable was found.
  """
  if not raw_path:
    raise _missing("netflix", "(nothing: config.data.raw_path is empty)", raw_path)
  path = os.path.abspath(os.path.expanduser(raw_path))
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path):
    raise _missing("netflix", path, raw_path)
  sub = os.path.join(path, "training_set")
  if os.path.isdir(sub):
    path = sub
  names = os.listdir(path)
  mv = sorted((n for n in names if re.fullmatch(r"mv_\d+\.txt", n)), key=_mv_number)
  if mv:
    return [os.path.join(path, n) for n in mv]
  combined = sorted((n for n in names if re.fullmatch(r"combined_data_\d+\.txt", n)),
                    key=_mv_number)
  if combined:
    return [os.path.join(path, n) for n in combined]
  raise _missing("netflix", f"{path}/mv_*.txt or {path}/combined_data_*.txt", raw_path,
                 what="files")


def input_files(data_config) -> list[str]:
  """The raw files `read_raw(data_config)` reads (absolute paths; `[]` for synthetic data).

  Raises:
    DataError: a file is missing, or the format is unknown.
  """
  fmt = data_config.format
  if fmt == "synthetic":
    return []
  if fmt == "netflix":
    return resolve_netflix_files(data_config.raw_path)
  if fmt not in FORMATS:
    raise DataError(f"Unknown data format {fmt!r} (--config.data.format); use one of "
                    f"{', '.join(FORMATS)}.")
  return [resolve_raw_file(data_config.raw_path, fmt)]


# ------------------------------------------------------------------------------------------------
# Locating the first bad line (the slow, second pass; only runs after the fast parse failed).
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Layout:
  """What a line of a delimited file must look like (used to report the first bad line)."""

  desc: str  # For messages, e.g. "4 comma-separated fields userId,movieId,rating,timestamp".
  split: Callable[[str], list]
  n_fields: int | None  # Exact field count, or None: at least `min_fields`.
  min_fields: int
  kinds: dict  # column -> 'int' | 'float' | 'str'
  header_lines: int = 0


def _check_field(value: str, kind: str) -> str | None:
  if kind == "int":
    return None if _INT_RE.match(value) else "an integer"
  if kind == "float":
    try:
      return None if not math.isnan(float(value)) else "a number"
    except ValueError:
      return "a number"
  return None if value.strip() else "a non-empty id"


def _iter_lines(path: str, start: int = 1) -> Iterator[tuple[int, str]]:
  with open(path, "rb") as f:
    for lineno, raw in enumerate(f, 1):
      if lineno >= start:
        yield lineno, raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _find_bad_line(path: str, layout: _Layout) -> tuple[int, str, str] | None:
  """First line that does not match `layout`: (1-based line number, reason, line), or None."""
  for lineno, line in _iter_lines(path):
    if lineno <= layout.header_lines or not line:
      continue
    fields = layout.split(line)
    n = len(fields)
    if (layout.n_fields is not None and n != layout.n_fields) or n < layout.min_fields:
      want = layout.n_fields if layout.n_fields is not None else f"at least {layout.min_fields}"
      return lineno, f"expected {want} fields, found {n}", line
    for col, kind in layout.kinds.items():
      problem = _check_field(fields[col], kind)
      if problem:
        return lineno, f"field {col + 1} should be {problem}, found {fields[col]!r}", line
  return None


def _bad_data(path: str, layout: _Layout, cause: BaseException | str | None = None) -> DataError:
  """A DataError naming the first bad line of `path` (or, failing that, the parser's complaint)."""
  found = _find_bad_line(path, layout)
  if found is not None:
    lineno, reason, line = found
    shown = line if len(line) <= 200 else line[:200] + "..."
    return DataError(f"{path}:{lineno}: malformed line ({reason}). Expected {layout.desc}.\n"
                     f"  Line {lineno}: {shown!r}")
  return DataError(f"{path}: could not parse the file as {layout.desc}: {cause}")


def _split_on(sep: str) -> Callable[[str], list]:
  return lambda line: line.split(sep)


def _split_ws(line: str) -> list:
  return line.split()


# ------------------------------------------------------------------------------------------------
# Id columns.
# ------------------------------------------------------------------------------------------------


def _check_id_type(id_type: str) -> None:
  if id_type not in ("int", "str"):
    raise DataError(f"config.data.id_type must be 'int' or 'str', got {id_type!r} "
                    f"(--config.data.id_type).")


def _sorted_categorical(values) -> pd.Categorical:
  """A Categorical of string ids whose categories are in string (code point) order."""
  cat = pd.Categorical(values)
  if not cat.categories.is_monotonic_increasing:
    cat = cat.reorder_categories(cat.categories.sort_values())
  return cat


def _as_id_type(col, id_type: str):
  """Integer ids stay as they are; with id_type 'str', ids become a sorted-category Categorical."""
  if id_type != "str":
    return col
  if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype):
    cat = pd.Categorical(col)
    if cat.categories.dtype.kind not in "iuf":
      return _sorted_categorical(cat)
  return _sorted_categorical(np.asarray(col).astype(str))


def _frame(user, item, rating=None) -> pd.DataFrame:
  n = len(user)
  if rating is None:
    rating = np.full(n, np.nan)
  return pd.DataFrame({"user": user, "item": item,
                       "rating": np.asarray(rating, dtype=np.float64)}, copy=False)


# ------------------------------------------------------------------------------------------------
# Generic fast tabular reading.
# ------------------------------------------------------------------------------------------------


class _StrIds:
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
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    gcodes = rank[gcodes]
    out, off = [], 0
    for codes, uniq in zip(self.codes, self.uniques):
      out.append(gcodes[off:off + len(uniq)][codes])
      off += len(uniq)
    self.codes, self.uniques = [], []
    codes = np.concatenate(out)
    dtype = np.int32 if len(order) < 2**31 - 1 else np.int64
    return pd.Categorical.from_codes(codes.astype(dtype), categories=pd.Index(guniq[order]),
                                     validate=False)


def _read_table(source, path: str, layout: _Layout, *, sep: str, usecols: Sequence[int] | None,
                names: Sequence[str], dtypes: dict, skiprows: int = 0,
                engine: str = "c") -> pd.DataFrame:
  """Parses `source` (path or buffer) with pandas in chunks; any failure is reported via `layout`.

  `usecols=None` reads exactly `len(names)` fields per line (a line with more is an error); with
  `usecols`, other columns are ignored. Columns whose dtype is "strid" (string ids) come back as
  Categoricals with sorted categories.
  """
  str_cols = [n for n in names if dtypes.get(n) == "strid"]
  pd_dtypes = {n: (object if dtypes[n] == "strid" else dtypes[n]) for n in names}
  kw = dict(sep=sep, header=None, skiprows=skiprows, usecols=None if usecols is None else
            list(usecols), names=list(names), dtype=pd_dtypes, index_col=False,
            keep_default_na=False, na_values=[""], engine=engine, skip_blank_lines=True,
            chunksize=_CHUNK_ROWS)
  if engine == "c":
    kw["encoding_errors"] = "replace"
  acc = {n: _StrIds() for n in str_cols}
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
            raise _bad_data(path, layout, f"missing values in column {name!r}")
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise _bad_data(path, layout, e) from None
  cols = {}
  for name in names:
    if name in acc:
      cols[name] = acc[name].categorical()
    else:
      parts = num[name]
      cols[name] = np.concatenate(parts) if parts else np.zeros(0, pd_dtypes[name])
      num[name] = None
  return pd.DataFrame(cols, copy=False)


def _id_dtype(id_type: str):
  return "strid" if id_type == "str" else np.int64


# ------------------------------------------------------------------------------------------------
# Formats.
# ------------------------------------------------------------------------------------------------


# The four columns of every MovieLens ratings file (ML-20M, ML-1M, ML-100K) and their types.
_ML_NAMES = ["user", "item", "rating", "timestamp"]
_ML_DTYPES = {"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64}


def read_ml20m(path: str, id_type: str = "int") -> pd.DataFrame:
  """MovieLens-20M `ratings.csv` (also ml-latest(-small), ML-25M): `userId,movieId,rating,timestamp`.

  Args:
    path: the `ratings.csv` file (with its header line).
    id_type: 'int' (default) or 'str' (ids then sort as strings).

  Returns:
    DataFrame `[n_rows]` with columns user, item, rating (see the module docstring).
  """
  layout = _Layout("4 comma-separated fields userId,movieId,rating,timestamp (integer ids, numeric "
                   "rating, integer timestamp) after the header line", _split_on(","), 4, 4,
                   {0: "int", 1: "int", 2: "float", 3: "int"}, header_lines=1)
  with open(path, "rb") as f:
    first = f.readline().decode("utf-8", errors="replace").strip()
  if [h.strip() for h in first.split(",")][:3] != ["userId", "movieId", "rating"]:
    raise DataError(f"{path}:1: expected the header line 'userId,movieId,rating,timestamp' "
                    f"(MovieLens ratings.csv), found {first[:200]!r}.")
  df = _read_table(path, path, layout, sep=",", usecols=None,
                   names=_ML_NAMES, dtypes=_ML_DTYPES, skiprows=1)
  return _frame(_as_id_type(df["user"], id_type), _as_id_type(df["item"], id_type), df["rating"])


def read_ml1m(path: str, id_type: str = "int") -> pd.DataFrame:
  """MovieLens-1M `ratings.dat`: `UserID::MovieID::Rating::Timestamp`, no header.

  Args:
    path: the `ratings.dat` file.
    id_type: 'int' (default) or 'str'.

  Returns:
    DataFrame with columns user, item, rating.
  """
  layout = _Layout("4 fields UserID::MovieID::Rating::Timestamp (integers)", _split_on("::"), 4, 4,
                   {0: "int", 1: "int", 2: "float", 3: "int"})
  with open(path, "rb") as f:
    data = f.read()
  # '::' is a multi-character separator, which only pandas' slow Python engine takes; the file is
  # small (24 MB), so swap it for a tab and use the C parser. A stray tab becomes a field-count error.
  df = _read_table(io.BytesIO(data.replace(b"::", b"\t")), path, layout, sep="\t",
                   usecols=None, names=_ML_NAMES, dtypes=_ML_DTYPES)
  return _frame(_as_id_type(df["user"], id_type), _as_id_type(df["item"], id_type), df["rating"])


def read_ml100k(path: str, id_type: str = "int") -> pd.DataFrame:
  """MovieLens-100K `u.data`: tab-separated `user item rating timestamp`, no header.

  Args:
    path: the `u.data` file.
    id_type: 'int' (default) or 'str'.

  Returns:
    DataFrame with columns user, item, rating.
  """
  layout = _Layout("4 tab-separated integer fields: user item rating timestamp", _split_on("\t"),
                   4, 4, {0: "int", 1: "int", 2: "float", 3: "int"})
  df = _read_table(path, path, layout, sep="\t", usecols=None,
                   names=_ML_NAMES, dtypes=_ML_DTYPES)
  return _frame(_as_id_type(df["user"], id_type), _as_id_type(df["item"], id_type), df["rating"])


def read_msd(path: str, id_type: str = "str") -> pd.DataFrame:
  """Million Song Dataset `train_triplets.txt`: `user<TAB>song<TAB>play count`, no header.

  Fast path (the real file): fixed-width ids (40-hex users, 18-character songs) and integer counts
  are parsed byte-wise with numpy in 64 MB blocks, ids hashed to 64 bits and factorised (collisions
  are checked, not assumed away), so 48M triplets end as int32 codes plus the distinct ids and never
  become 96M Python strings. Any line outside that shape sends the whole file to the general path
  (pandas, chunks of 4M rows), which also reports malformed lines.

  Args:
    path: the `train_triplets.txt` file.
    id_type: 'str' (default; user and song ids are hex / 'SO...' strings and sort as strings) or
      'int' (only for files whose ids are integers).

  Returns:
    DataFrame with columns user, item (sorted-category Categoricals for 'str'), rating = play count.
  """
  _check_id_type(id_type)
  if id_type == "str":
    df = _read_triplets_fast(path)
    if df is not None:
      return df
  kind = "str" if id_type == "str" else "int"
  layout = _Layout("3 tab-separated fields: user id, song id, play count (integer)",
                   _split_on("\t"), 3, 3, {0: kind, 1: kind, 2: "int"})
  df = _read_table(path, path, layout, sep="\t", usecols=None,
                   names=["user", "item", "rating"],
                   dtypes={"user": _id_dtype(id_type), "item": _id_dtype(id_type),
                           "rating": np.float64})
  return _frame(df["user"], df["item"], df["rating"])


def _line_blocks(path: str) -> Iterator[bytes]:
  """Yields ~64 MB blocks of a file, each ending with a newline (one is added at the very end)."""
  carry = b""
  with open(path, "rb") as f:
    while True:
      chunk = f.read(_BLOCK_BYTES)
      if not chunk:
        break
      cut = chunk.rfind(b"\n") + 1
      if cut:
        yield carry + chunk[:cut] if carry else chunk[:cut] if cut < len(chunk) else chunk
        carry = chunk[cut:]
      else:
        carry += chunk
  if carry:
    yield carry + b"\n"


_FNV_PRIME = np.uint64(1099511628211)


def _words(mat: np.ndarray) -> np.ndarray:
  """A uint8 matrix `[n, w]` as uint64 words `[n, ceil(w / 8)]` (zero padded)."""
  n, w = mat.shape
  w8 = -(-w // 8) * 8
  if w8 != w:
    mat = np.concatenate([mat, np.zeros((n, w8 - w), np.uint8)], axis=1)
  return np.ascontiguousarray(mat).view(np.uint64)


def _row_hash(words: np.ndarray) -> np.ndarray:
  """A 64-bit hash of each row of uint64 words `[n, k]` (as int64, for pd.factorize)."""
  h = np.full(words.shape[0], np.uint64(14695981039346656037))
  for j in range(words.shape[1]):
    h ^= words[:, j]
    h *= _FNV_PRIME  # Wraps modulo 2**64.
    h ^= h >> np.uint64(29)
  return h.view(np.int64)


def _factorize_rows(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
  """(codes, first-occurrence rows) of the distinct rows of `mat`; None on a hash collision."""
  words = _words(mat)
  codes, _ = pd.factorize(_row_hash(words))
  # Codes are numbered in order of first appearance: a new code is a new running maximum.
  first = np.flatnonzero(codes > np.maximum.accumulate(np.concatenate([[-1], codes[:-1]])))
  if not (words == words[first][codes]).all():  # Distinct ids with equal hashes.
    return None
  return codes.astype(np.int32), mat[first]


class _Fallback(Exception):
  pass


class _BytesIds:
  """Fixed-width byte-string ids accumulated block by block as codes (see `read_msd`)."""

  def __init__(self):
    self.codes, self.reps = [], []

  def add(self, mat: np.ndarray) -> None:
    if self.reps and mat.shape[1] != self.reps[0].shape[1]:
      raise _Fallback("id width changed")
    out = _factorize_rows(mat)
    if out is None:
      raise _Fallback("hash collision")
    self.codes.append(out[0])
    self.reps.append(out[1])

  def categorical(self) -> pd.Categorical:
    allreps = np.concatenate(self.reps)
    out = _factorize_rows(allreps)
    if out is None:
      raise _Fallback("hash collision")
    gcodes, uniq = out
    w = uniq.shape[1]
    as_bytes = np.ascontiguousarray(uniq).view(f"S{w}").ravel()
    order = np.argsort(as_bytes, kind="stable")  # Byte order = code point order for UTF-8.
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    gcodes = rank[gcodes]
    parts, off = [], 0
    for codes, reps in zip(self.codes, self.reps):
      parts.append(gcodes[off:off + len(reps)][codes])
      off += len(reps)
    self.codes, self.reps = [], []
    try:
      cats = pd.Index(as_bytes[order].astype(f"U{w}"))  # ASCII ids (MSD): vectorised.
    except UnicodeDecodeError:
      cats = pd.Index([b.decode("utf-8", "replace") for b in as_bytes[order].tolist()])
    return pd.Categorical.from_codes(np.concatenate(parts), categories=cats, validate=False)


def _read_triplets_fast(path: str) -> pd.DataFrame | None:
  """`user<TAB>item<TAB>count` with fixed-width ids, parsed with numpy; None if not that shape."""
  users, items, counts = _BytesIds(), _BytesIds(), []
  try:
    for block in _line_blocks(path):
      arr = np.frombuffer(block, np.uint8)
      nl = np.flatnonzero(arr == 10)
      tabs = np.flatnonzero(arr == 9)
      n = len(nl)
      if len(tabs) != 2 * n:
        raise _Fallback("field count")
      t1, t2 = tabs[0::2], tabs[1::2]
      starts = np.empty(n, np.int64)
      starts[0] = 0
      starts[1:] = nl[:-1] + 1
      # With sorted tabs, 2 per line on average, these inequalities put exactly 2 in each line.
      if not ((t1 > starts).all() and (t2 > t1 + 1).all() and (nl > t2 + 1).all()):
        raise _Fallback("empty field or tab misplaced")
      wu, wi, wc = t1 - starts, t2 - t1 - 1, nl - t2 - 1
      if (wu != wu[0]).any() or (wi != wi[0]).any() or wc.max() > 15:
        raise _Fallback("variable-width ids")
      # Row gathers through strided windows (an [n, w] index array would cost 8x the bytes).
      win = np.lib.stride_tricks.sliding_window_view
      users.add(win(arr, int(wu[0]))[starts])
      items.add(win(arr, int(wi[0]))[t1 + 1])
      mw = int(wc.max())
      padded = np.concatenate([arr, np.full(mw, 48, np.uint8)])
      digits = win(padded, mw)[t2 + 1] - np.uint8(48)
      valid = np.arange(mw)[None, :] < wc[:, None]
      if ((digits > 9) & valid).any():
        raise _Fallback("non-integer count")
      value = np.zeros(n, np.int64)
      for j in range(mw):
        value = np.where(valid[:, j], value * 10 + digits[:, j], value)
      counts.append(value.astype(np.float64))
    if not counts:
      return None
    return _frame(users.categorical(), items.categorical(), np.concatenate(counts))
  except _Fallback:
    return None


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
  _check_id_type(id_type)
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
  layout = _Layout(f"{sep_desc}-separated fields with the user id in column {user_col}, the item id "
                   f"in column {item_col}" +
                   (f", a numeric rating in column {rating_col}" if rating_col >= 0 else "") +
                   " (0-based columns)", _split_ws if sep is None else _split_on(sep), None,
                   max(cols.values()) + 1, kinds, header_lines=int(bool(header)))
  by_pos = sorted(cols.items(), key=lambda kv: kv[1])
  names = [k for k, _ in by_pos]
  dtypes = {"user": _id_dtype(id_type), "item": _id_dtype(id_type), "rating": np.float64}
  if sep is None:
    pd_sep, engine = r"\s+", "c"
  elif len(sep) == 1:
    pd_sep, engine = sep, "c"
  else:
    pd_sep, engine = re.escape(sep), "python"
  # usecols by position with names for just those columns: pandas wants names for all used columns.
  df = _read_table(path, path, layout, sep=pd_sep, usecols=[c for _, c in by_pos], names=names,
                   dtypes={n: dtypes[n] for n in names}, skiprows=int(bool(header)),
                   engine=engine)
  return _frame(df["user"], df["item"], df["rating"] if "rating" in df else None)


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
  _check_id_type(id_type)
  kind = "int" if id_type == "int" else "str"
  layout = _Layout(f"whitespace-separated {'integer ' if kind == 'int' else ''}ids: a user id then "
                   f"its item ids", _split_ws, None, 1, {}, header_lines=0)
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
  if id_type == "int":
    try:
      user_ids = np.asarray(users).astype(np.int64) if users else np.zeros(0, np.int64)
      items = np.asarray(tokens).astype(np.int64) if tokens else np.zeros(0, np.int64)
    except (ValueError, OverflowError) as e:
      found = None
      for lineno, line in _iter_lines(path):
        for j, tok in enumerate(line.split()):
          if not _INT_RE.match(tok):
            found = (lineno, f"token {j + 1} should be an integer id, found {tok!r}", line)
            break
        if found:
          break
      if found is None:
        raise DataError(f"{path}: could not parse the adjacency list: {e}") from None
      lineno, reason, line = found
      raise DataError(f"{path}:{lineno}: malformed line ({reason}). Expected {layout.desc}.\n"
                      f"  Line {lineno}: {line[:200]!r}") from None
    user = np.repeat(user_ids, counts)
    item = items
  else:
    user = _sorted_categorical(np.repeat(np.asarray(users, dtype=object), counts))
    item = _sorted_categorical(np.asarray(tokens, dtype=object))
  return _frame(user, item, None)


# ---- Netflix. ------------------------------------------------------------------------------------


def _netflix_blocks(files: Sequence[str]) -> Iterator[bytes]:
  """Yields ~64 MB byte blocks of the concatenated files, each ending at a line boundary."""
  buf: list[bytes] = []
  size = 0
  for path in files:
    with open(path, "rb") as f:
      first = f.readline(256).decode("utf-8", "replace").rstrip("\r\n")
      if os.path.basename(path).startswith("mv_") and not _NETFLIX_MOVIE_RE.match(first):
        raise DataError(f"{path}:1: malformed line (expected a 'MOVIEID:' line, e.g. '1:', first in "
                        f"a Netflix mv_*.txt file).\n  Line 1: {first[:200]!r}")
      f.seek(0)
      while True:
        chunk = f.read(_BLOCK_BYTES)
        if not chunk:
          break
        buf.append(chunk)
        size += len(chunk)
        if size >= _BLOCK_BYTES:
          block = b"".join(buf)
          cut = block.rfind(b"\n") + 1
          if cut > 0:
            yield block[:cut]
            block = block[cut:]
          buf, size = ([block], len(block)) if block else ([], 0)
      if buf and not buf[-1].endswith(b"\n"):
        buf.append(b"\n")
        size += 1
  if buf:
    yield b"".join(buf)


class _NetflixError(Exception):
  pass


def _parse_netflix_block(block: bytes, movie: int | None) -> tuple[pd.DataFrame, np.ndarray, int]:
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
    m = _NETFLIX_MOVIE_RE.match(block[starts[h]:ends_eff[h]].decode("utf-8", "replace"))
    if not m:
      raise _NetflixError("bad movie line")
    movies.append(int(m.group(1)))
  data_lines = nonblank & ~is_hdr
  # Field count check without parsing the dates: each data line has exactly 2 commas and a
  # non-empty last field.
  n_commas = np.bincount(np.searchsorted(ends, np.flatnonzero(arr == 44)), minlength=len(ends))
  if (data_lines & ((n_commas != 2) | (arr[np.maximum(ends_eff - 1, 0)] == 44))).any():
    raise _NetflixError("field count")
  if not data_lines.any():
    empty = pd.DataFrame({"user": np.zeros(0, np.int64), "rating": np.zeros(0)})
    return empty, np.zeros(0, np.int64), (movies[-1] if movies else movie)
  which = np.cumsum(is_hdr)[data_lines]  # 0: before the block's first header.
  if movie is None and (which == 0).any():
    raise _NetflixError("data before the first movie line")
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
    raise _NetflixError("field count")
  return df, line_movie, (movies[-1] if movies else movie)


def _netflix_bad_line(files: Sequence[str], cause) -> DataError:
  desc = ("a 'MOVIEID:' line (e.g. '1:') starting each movie's block, then lines of 3 comma-separated "
          "fields CustomerID,Rating,Date (integer CustomerID and Rating)")
  for path in files:
    movie_seen = False
    for lineno, line in _iter_lines(path):
      if not line:
        continue
      if line.rstrip().endswith(":"):
        if _NETFLIX_MOVIE_RE.match(line):
          movie_seen = True
          continue
        reason = "a movie line must be an integer id followed by ':'"
      elif not movie_seen:
        reason = "a data line before the first 'MOVIEID:' line"
      else:
        fields = line.split(",")
        if len(fields) != 3:
          reason = f"expected 3 fields, found {len(fields)}"
        elif not _INT_RE.match(fields[0]):
          reason = f"CustomerID should be an integer, found {fields[0]!r}"
        elif _check_field(fields[1], "float"):
          reason = f"Rating should be a number, found {fields[1]!r}"
        elif not fields[2].strip():
          reason = "the Date is empty"
        else:
          continue
      return DataError(f"{path}:{lineno}: malformed line ({reason}). Expected {desc}.\n"
                       f"  Line {lineno}: {line[:200]!r}")
  return DataError(f"{files[0] if len(files) == 1 else os.path.dirname(files[0])}: could not parse "
                   f"the Netflix data ({desc}): {cause}")


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
    files = resolve_netflix_files(files)
  users, items, ratings = [], [], []
  movie = None
  try:
    for block in _netflix_blocks(files):
      df, line_movie, movie = _parse_netflix_block(block, movie)
      users.append(df["user"].to_numpy())
      ratings.append(df["rating"].to_numpy())
      items.append(line_movie)
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise _netflix_bad_line(files, e) from None
  cat = lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt)
  user, item = cat(users, np.int64), cat(items, np.int64)
  return _frame(_as_id_type(user, id_type), _as_id_type(item, id_type), cat(ratings, np.float64))


# ------------------------------------------------------------------------------------------------
# Dispatcher.
# ------------------------------------------------------------------------------------------------


def read_raw(data_config) -> pd.DataFrame:
  """Reads the raw data named by `config.data` into the reader DataFrame.

  Args:
    data_config: the `config.data` block (format, raw_path, id_type, delimiter, header, user_col,
      item_col, rating_col, synthetic.*).

  Returns:
    DataFrame `[n_rows]` with columns user, item, rating, in raw file order.

  Raises:
    DataError: missing file, malformed line, or bad reader options.
  """
  fmt = data_config.format
  id_type = data_config.get("id_type", "int")
  _check_id_type(id_type)
  if fmt == "synthetic":
    from ract_jax.data import synthetic  # pylint: disable=g-import-not-at-top
    df = synthetic.generate(data_config.synthetic)
    if id_type == "str":
      df = _frame(_as_id_type(df["user"], "str"), _as_id_type(df["item"], "str"), df["rating"])
    return df
  files = input_files(data_config)
  if fmt == "netflix":
    return read_netflix(files, id_type)
  path = files[0]
  if fmt == "ml20m":
    return read_ml20m(path, id_type)
  if fmt == "ml1m":
    return read_ml1m(path, id_type)
  if fmt == "ml100k":
    return read_ml100k(path, id_type)
  if fmt == "msd":
    return read_msd(path, id_type)
  if fmt == "delimited":
    return read_delimited(path, delimiter=data_config.delimiter, header=bool(data_config.header),
                          user_col=int(data_config.user_col), item_col=int(data_config.item_col),
                          rating_col=int(data_config.rating_col), id_type=id_type)
  if fmt == "adjacency":
    return read_adjacency(path, id_type)
  raise DataError(f"Unknown data format {fmt!r}.")  # Unreachable: input_files checked it.


def has_ratings(data_config) -> bool:
  """Whether the configured format carries rating values (so that a rating threshold can apply)."""
  if data_config.format == "adjacency":
    return False
  if data_config.format == "delimited":
    return int(data_config.rating_col) >= 0
  return True
