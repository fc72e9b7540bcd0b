"""The record every raw format fills in (`Format`), and how a `raw_path` becomes input files."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import pandas as pd

from ract_jax.data import textio
from ract_jax.data.errors import DataError


@dataclasses.dataclass(frozen=True)
class Source:
  """Where a dataset comes from, for "file not found" messages.

  Attributes:
    title: e.g. "MovieLens-20M".
    expected: what `raw_path` should point at, e.g. "ratings.csv" (None: nothing to say).
    download: the download page, or where the data comes from.
  """

  title: str
  expected: str | None
  download: str


def _yes(data_config) -> bool:
  del data_config
  return True


@dataclasses.dataclass(frozen=True)
class Format:
  """One raw format: how its files are found and read, and which options change its output.

  Attributes:
    name: the `config.data.format` value.
    read: (input files, `config.data`) -> the reader DataFrame (`textio.frame`: user, item,
      rating, one row per raw interaction, in raw order).
    source: where the data comes from (for messages).
    default_file: the file looked for when `raw_path` is a folder (None: `raw_path` is the file).
    cache_keys: the `config.data` keys, besides `format`, `id_type` and the protocol's, that change
      what `read` returns; the processed data's cache key covers them.
    has_ratings: `config.data` -> whether rows carry rating values (so that a threshold applies).
    resolve: (this Format, `raw_path`) -> the input files in reading order; None: `single_file`.
  """

  name: str
  read: Callable[[list, object], pd.DataFrame]
  source: Source
  default_file: str | None = None
  cache_keys: tuple = ()
  has_ratings: Callable[[object], bool] = _yes
  resolve: Callable[["Format", str], list] | None = None

  def input_files(self, raw_path: str) -> list[str]:
    """The absolute paths `read` takes, for `config.data.raw_path`.

    Raises:
      DataError: nothing usable there (the message says where it looked, which config key sets
        it and where to download the dataset).
    """
    return (self.resolve or single_file)(self, raw_path)

  def missing(self, looked_for: str, raw_path: str, what: str = "raw file") -> DataError:
    """The DataError for input that is not where `raw_path` says."""
    expected = f" (expected: {self.source.expected})" if self.source.expected else ""
    return DataError(
        f"{self.source.title} {what} not found{expected}.\n"
        f"  Looked for: {looked_for}\n"
        f"  It is set by --config.data.raw_path=... (currently {raw_path!r}; relative paths are "
        f"taken from the working directory {os.getcwd()}).\n"
        f"  Download: {self.source.download}")


def absolute(fmt: Format, raw_path: str) -> str:
  """`raw_path` as an absolute path; DataError if it is empty."""
  if not raw_path:
    raise fmt.missing("(nothing: config.data.raw_path is empty)", raw_path)
  return os.path.abspath(os.path.expanduser(raw_path))


def single_file(fmt: Format, raw_path: str) -> list[str]:
  """`[raw_path]`, or `[raw_path/default_file]` when raw_path is a folder; the file must exist."""
  path = absolute(fmt, raw_path)
  if os.path.isdir(path) and fmt.default_file:
    path = os.path.join(path, fmt.default_file)
  if not os.path.isfile(path):
    raise fmt.missing(path, raw_path)
  return [path]


def no_files(fmt: Format, raw_path: str) -> list[str]:
  """For generated data: nothing is read."""
  del fmt, raw_path
  return []


def one_file(reader: Callable[[str, str], pd.DataFrame]) -> Callable[[list, object], pd.DataFrame]:
  """A `Format.read` for readers of one file: `reader(files[0], config.data.id_type)`."""
  return lambda files, data_config: reader(files[0], textio.id_type_of(data_config))
