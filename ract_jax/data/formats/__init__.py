"""The raw formats: a registry of `Format` records (`spec.py`), one module per family.

  get(name) -> Format                 (a DataError listing the known formats for an unknown name)
  read_raw(config.data) -> DataFrame  (user, item, rating; one row per raw interaction, raw order)
  input_files / has_ratings / reader_params (config.data)

Every other module of this package defines `FORMATS`, a tuple of `Format` records; the registry
imports each of them once, here, so a new format is one new module (docs/data.md, "How to add a
format"): movielens.py (ml20m, ml1m, ml100k), netflix.py, msd.py, generic.py (delimited,
adjacency), synthetic.py.
"""

from __future__ import annotations

import importlib
import pkgutil

import pandas as pd

from ract_jax.data import textio
from ract_jax.data.errors import DataError
from ract_jax.data.formats.spec import Format, Source


def _discover() -> dict:
  registry = {}
  for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if info.name == "spec" or info.name.startswith("_"):
      continue
    module = importlib.import_module(f"{__name__}.{info.name}")
    for fmt in module.FORMATS:
      if fmt.name in registry:
        raise ImportError(f"data format {fmt.name!r} is defined twice (formats/{info.name}.py and "
                          f"an earlier module)")
      registry[fmt.name] = fmt
  return registry


REGISTRY: dict = _discover()


def get(name: str) -> Format:
  """The Format registered as `name` (`config.data.format`).

  Raises:
    DataError: unknown name; the message lists the known formats.
  """
  try:
    return REGISTRY[name]
  except KeyError:
    raise DataError(f"Unknown data format {name!r} (--config.data.format); use one of "
                    f"{', '.join(REGISTRY)}.") from None


def input_files(data_config) -> list[str]:
  """The raw files `read_raw(data_config)` reads (absolute paths; `[]` for generated data).

  Raises:
    DataError: a file is missing, or the format is unknown.
  """
  return get(data_config.format).input_files(data_config.raw_path)


def has_ratings(data_config) -> bool:
  """Whether the configured format carries rating values (so that a rating threshold can apply)."""
  return get(data_config.format).has_ratings(data_config)


def reader_params(data_config) -> dict:
  """The config.data keys, besides the protocol's, that change what the reader produces."""
  fmt = get(data_config.format)
  out = {"format": fmt.name, "id_type": data_config.get("id_type", "int")}
  for key in fmt.cache_keys:
    value = data_config[key]
    out[key] = value.to_dict() if hasattr(value, "to_dict") else value
  return out


def read_raw(data_config) -> pd.DataFrame:
  """Reads the raw data named by `config.data` into the reader DataFrame.

  Args:
    data_config: the `config.data` block (format, raw_path, id_type and the format's own keys).

  Returns:
    DataFrame `[n_rows]` with columns user, item, rating, in raw file order (`textio.frame`).

  Raises:
    DataError: unknown format or id_type, missing file, malformed line, or bad reader options.
  """
  textio.id_type_of(data_config)
  fmt = get(data_config.format)
  return fmt.read(fmt.input_files(data_config.get("raw_path", "")), data_config)


__all__ = ["Format", "Source", "REGISTRY", "get", "input_files", "has_ratings", "reader_params",
           "read_raw"]
