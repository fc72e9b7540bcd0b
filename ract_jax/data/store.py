"""The cache of processed directories: raw files -> protocol -> processed directory, once per input.

  prepare_dataset(config.data) -> path   (reads, splits and writes unless a loadable copy is cached)
  load_dataset(config.data) -> ProcessedData

The cache key covers every `config.data` key that changes the output plus fingerprints of the input
files. The directory layout, loading and writing live in `processed.py` (its public names, and
`format_lines` from `blockio.py`, are importable from here too, as before the split).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Callable, Sequence

from ract_jax.data import atomic_dir, formats, textio
from ract_jax.data.blockio import format_lines
from ract_jax.data.csr import ProcessedData
from ract_jax.data.errors import DamagedFileError, DataError
from ract_jax.data.processed import (FORMAT_VERSION, LIANG_FILES, counts, describe, is_complete,
                                     is_liang_dir, load_processed, read_liang_csv, read_meta,
                                     split_to_processed, write_liang_csv, write_processed)
from ract_jax.data.protocol import ProtocolParams, run_protocol

_FINGERPRINT_BYTES = 1 << 20  # sha1 over the first and the last MiB of each input file.

Log = Callable[[str], None]

# The names store.py had before processed.py and blockio.py took them over stay importable here.
__all__ = ["FORMAT_VERSION", "LIANG_FILES", "cache_key", "cache_root", "counts", "describe",
           "fingerprint", "format_lines", "is_complete", "is_liang_dir", "load_dataset",
           "load_processed", "prepare_dataset", "processed_dir_for", "read_liang_csv", "read_meta",
           "split_to_processed", "write_liang_csv", "write_processed"]


def fingerprint(path: str) -> dict:
  """A fast fingerprint of an input file: size, mtime and sha1 of its first and last MiB.

  Not a full hash (reading 3 GB of MSD on every start would cost ~10 s); it catches replaced,
  truncated, appended-to and re-downloaded files.
  """
  st = os.stat(path)
  h = hashlib.sha1()
  with open(path, "rb") as f:
    h.update(f.read(_FINGERPRINT_BYTES))
    if st.st_size > _FINGERPRINT_BYTES:
      f.seek(max(st.st_size - _FINGERPRINT_BYTES, _FINGERPRINT_BYTES))
      h.update(f.read(_FINGERPRINT_BYTES))
  return {"name": os.path.basename(path), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns),
          "sha1_head_tail": h.hexdigest()}


def _fingerprints(files: Sequence[str]) -> list[dict]:
  fps = [fingerprint(f) for f in files]
  if len(files) > 1:
    # Many small files (Netflix mv_*.txt): keep names relative to their folder.
    base = os.path.commonpath(files)
    for fp, f in zip(fps, files):
      fp["name"] = os.path.relpath(f, base)
  return fps


def cache_key(data_config, fingerprints: Sequence[dict]) -> str:
  """sha1 over the format version, reader + protocol parameters and input fingerprints."""
  payload = {"format_version": FORMAT_VERSION, "reader": formats.reader_params(data_config),
             "protocol": ProtocolParams.from_config(data_config).to_dict(),
             "inputs": list(fingerprints)}
  return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cache_root() -> str:
  """`$RACT_JAX_CACHE`, or `~/.cache/ract_jax`."""
  return os.path.abspath(os.path.expanduser(
      os.environ.get("RACT_JAX_CACHE") or os.path.join("~", ".cache", "ract_jax")))


def processed_dir_for(data_config, key: str) -> str:
  """config.data.processed_dir, or `<cache_root>/processed/<name>-<key[:12]>` when it is ''."""
  if data_config.processed_dir:
    return os.path.abspath(os.path.expanduser(data_config.processed_dir))
  return os.path.join(cache_root(), "processed", f"{data_config.name}-{key[:12]}")


def _diff(old: dict, new: dict, prefix: str = "") -> list[str]:
  out = []
  for k in sorted(set(old) | set(new)):
    a, b = old.get(k), new.get(k)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _diff(a, b, f"{prefix}{k}.")
    elif a != b:
      out.append(f"{prefix}{k}: {a!r} -> {b!r}")
  return out


def _why_changed(meta_old: dict, inputs_new: dict) -> str:
  """What differs between an existing directory's meta.json and the inputs of the key needed."""
  old_in = {"protocol": meta_old.get("protocol", {}), "reader": meta_old.get("reader", {}),
            "inputs": {str(i): v for i, v in enumerate(meta_old.get("inputs", []))}}
  changes = _diff(json.loads(json.dumps(old_in, default=str)),
                  json.loads(json.dumps(inputs_new, default=str)))
  return "; ".join(changes[:8]) or (f"format version {meta_old.get('format_version')} -> "
                                    f"{FORMAT_VERSION} or an incomplete directory")


def _reuse(target: str, key: str, inputs_new: dict, in_cache: bool, log: Log):
  """The loaded processed data at `target` if it can serve `key`, else None (then re-prepare).

  In the cache, a directory that fails to load is reported and re-prepared; a user-given
  processed_dir that fails to load, or holds something else, is a DataError (it is never replaced
  unless it is a processed directory of another key).
  """
  try:
    meta_old = read_meta(target)
    if meta_old is not None and meta_old.get("cache_key") == key and is_complete(target):
      data = load_processed(target)
      log(f"data: using cached processed data {target} (cache key {key[:12]})")
      return data
  except DamagedFileError as e:
    if not in_cache:
      raise
    log(f"data: warning: {e.file} cannot be read ({e.problem}); re-preparing {target} from the "
        f"raw data")
    return None
  if not os.path.lexists(target):
    return None
  if meta_old is not None:
    log(f"data: re-preparing {target}: it holds cache key {str(meta_old.get('cache_key'))[:12]}, "
        f"need {key[:12]} ({_why_changed(meta_old, inputs_new)})")
    return None
  if is_liang_dir(target):
    log(f"data: {target} holds the authors' Liang CSVs (no meta.json); using it as is. Its "
        f"protocol parameters cannot be checked, and config.data.raw_path is not read.")
    return load_processed(target)
  if os.path.isdir(target) and not os.listdir(target):
    return None
  raise DataError(f"config.data.processed_dir={target} exists but is not a processed directory; "
                  f"refusing to overwrite it. Remove it or choose another "
                  f"--config.data.processed_dir.")


def _prepare(data_config, log: Log) -> ProcessedData:
  """prepare_dataset, returning the loaded data (every path ends with a successful load)."""
  t0 = time.time()
  textio.id_type_of(data_config)
  fmt = formats.get(data_config.format)
  params = ProtocolParams.from_config(data_config)
  params.validate()
  if params.rating_threshold is not None and not fmt.has_ratings(data_config):
    raise DataError(
        f"config.data.rating_threshold={params.rating_threshold} is set, but the "
        f"{data_config.format!r} format has no rating values. Use "
        f"--config.data.rating_threshold=None" + (", or name the rating column "
        "(--config.data.rating_col=...)." if "rating_col" in fmt.cache_keys else "."))
  files = fmt.input_files(data_config.raw_path)
  fps = _fingerprints(files)
  key = cache_key(data_config, fps)
  target = processed_dir_for(data_config, key)
  in_cache = not data_config.processed_dir
  # In the cache every scratch directory is ours; beside a user's directory, only its own.
  atomic_dir.remove_stale_scratch(os.path.dirname(target), log,
                                  None if in_cache else os.path.basename(target))
  reader = formats.reader_params(data_config)
  inputs_new = {"protocol": params.to_dict(), "reader": reader,
                "inputs": {str(i): v for i, v in enumerate(fps)}}
  data = _reuse(target, key, inputs_new, in_cache, log)
  if data is not None:
    return data
  log(f"data: preparing {data_config.name} ({data_config.format}) from "
      f"{', '.join(files[:3]) + (' ...' if len(files) > 3 else '') if files else 'synthetic'}")
  df = fmt.read(files, data_config)
  log(f"data: read {len(df):,} rows in {time.time() - t0:.1f}s")
  split = run_protocol(df, params, log=log)
  del df
  meta = {"format_version": FORMAT_VERSION, "cache_key": key, "name": data_config.name,
          "reader": reader, "protocol": params.to_dict(),
          "raw_path": os.path.abspath(os.path.expanduser(data_config.raw_path))
                      if data_config.raw_path else "",
          "inputs": fps, "fingerprint": "size + mtime_ns + sha1 of the first and last MiB",
          "stats": split.stats, "created_unix": time.time()}
  write_processed(split, target, meta)
  log(f"data: wrote {target} in {time.time() - t0:.1f}s")
  return load_processed(target)


def prepare_dataset(data_config, log: Log = print) -> str:
  """Reads the raw data, runs the protocol and writes the processed directory, unless cached.

  If the processed directory already holds a complete dataset with the same cache key and it
  loads, nothing is written; if it holds another key, it is re-prepared (replaced atomically) and
  the log says why. A cached directory that fails to load (a damaged file) is reported and
  re-prepared. Stale scratch directories of killed preparations beside it are removed.

  Args:
    data_config: the `config.data` block.
    log: callable(str) for progress and cache messages.

  Returns:
    The absolute path of the processed directory.

  Raises:
    DataError: missing / malformed input, parameters that do not fit the data, a processed_dir
      that holds something else, or a user-given processed_dir that fails to load (the message
      names the file).
  """
  return _prepare(data_config, log).path


def load_dataset(data_config, log: Log = print) -> ProcessedData:
  """`prepare_dataset`, then the loaded processed directory (loaded once).

  Args:
    data_config: the `config.data` block.
    log: callable(str).

  Returns:
    The ProcessedData.
  """
  return _prepare(data_config, log)
