"""The processed directory: Liang-compatible CSVs + fast arrays, written atomically and cached.

Layout of a processed directory (everything directly inside it):

  train.csv, validation_tr.csv, validation_te.csv, test_tr.csv, test_te.csv
      `uid,sid` header, integer rows: byte-for-byte what the authors' `setup_data.py` writes
      (pandas `to_csv(index=False)`), so their loaders read ours and ours read theirs.
  unique_sid.txt
      raw item ids, one per line; line number = sid.
  arrays.npz
      the CSR arrays (`train_indptr`, `train_indices`, and for `validation` / `test`: `_uids`,
      `_fold_in_indptr`, `_fold_in_indices`, `_held_out_indptr`, `_held_out_indices`), uncompressed.
  meta.json
      counts per split, protocol parameters, input fingerprints, `cache_key`, `format_version`.

`load_processed` reads only arrays.npz + unique_sid.txt + meta.json. A directory written by the
authors' code (CSVs + unique_sid.txt only) loads too: the arrays are then built from the CSVs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ract_jax.data import protocol as protocol_lib
from ract_jax.data import readers
from ract_jax.data.csr import CSR, HeldOut, ProcessedData
from ract_jax.data.readers import DataError

FORMAT_VERSION = 1
LIANG_FILES = ("train.csv", "validation_tr.csv", "validation_te.csv", "test_tr.csv", "test_te.csv")
_FINGERPRINT_BYTES = 1 << 20  # sha1 over the first and the last MiB of each input file.

Log = Callable[[str], None]

# ------------------------------------------------------------------------------------------------
# Fast text formatting of integer columns (pandas' to_csv does ~0.7M rows/s; this ~10x that).
# ------------------------------------------------------------------------------------------------

_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)


def _digits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Right-aligned ASCII digits `[n, w]` of non-negative ints and the mask of the real digits."""
  x = np.asarray(x, dtype=np.int64)
  if x.size and x.min() < 0:
    raise ValueError("negative integers are not supported here")
  width = np.searchsorted(_POW10, x, side="right") + 1
  w = int(width.max()) if x.size else 1
  mat = np.empty((x.shape[0], w), dtype=np.uint8)
  rest = x.copy()
  for j in range(w - 1, -1, -1):
    mat[:, j] = 48 + (rest % 10)
    rest //= 10
  mask = np.arange(w)[None, :] >= (w - width)[:, None]
  return mat, mask


def _bytes_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """A fixed-width bytes array ('S' dtype) as `[n, w]` uint8 and its mask (NUL padding dropped)."""
  x = np.ascontiguousarray(x)
  w = x.dtype.itemsize
  mat = x.view(np.uint8).reshape(x.shape[0], w)
  return mat, mat != 0


def format_lines(columns: Sequence, sep: bytes = b",", chunk: int = 2_000_000):
  """Yields the text of a table, `sep`-separated, '\\n'-terminated, in chunks of bytes.

  Args:
    columns: equal-length columns: non-negative integer arrays (written in decimal) or bytes
      arrays of dtype 'S<w>' (written as is, without NUL padding).
    sep: the field separator.
    chunk: rows per yielded piece.

  Yields:
    bytes, one piece per `chunk` rows.
  """
  n = len(columns[0])
  sep_arr = np.frombuffer(sep, np.uint8)
  for s in range(0, n, chunk):
    mats, masks = [], []
    for j, col in enumerate(columns):
      part = col[s:s + chunk]
      mat, mask = _bytes_columns(part) if part.dtype.kind == "S" else _digits(part)
      if j:
        mats.append(np.broadcast_to(sep_arr, (mat.shape[0], len(sep_arr))))
        masks.append(np.ones((mat.shape[0], len(sep_arr)), bool))
      mats.append(mat)
      masks.append(mask)
    mats.append(np.full((mats[0].shape[0], 1), 10, np.uint8))
    masks.append(np.ones((mats[0].shape[0], 1), bool))
    yield np.concatenate(mats, axis=1)[np.concatenate(masks, axis=1)].tobytes()


def write_liang_csv(path: str, pairs: protocol_lib.Pairs) -> None:
  """Writes `uid,sid` rows exactly as pandas' `DataFrame.to_csv(index=False)` does."""
  with open(path, "wb") as f:
    f.write(b"uid,sid\n")
    for piece in format_lines([pairs.uid, pairs.sid]):
      f.write(piece)


def read_liang_csv(path: str) -> protocol_lib.Pairs:
  """Reads a Liang `uid,sid` CSV (ours or the authors')."""
  try:
    df = pd.read_csv(path, dtype={"uid": np.int64, "sid": np.int64}, engine="c")
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"{path}: not a Liang 'uid,sid' CSV: {e}") from None
  if list(df.columns[:2]) != ["uid", "sid"]:
    raise DataError(f"{path}: expected the header 'uid,sid', found {list(df.columns)}.")
  return protocol_lib.Pairs(df["uid"].to_numpy(), df["sid"].to_numpy())


# ------------------------------------------------------------------------------------------------
# In-memory conversion: LiangSplit <-> ProcessedData.
# ------------------------------------------------------------------------------------------------


def _sorted_unique(x: np.ndarray) -> np.ndarray:
  # np.unique / np.union1d are pathologically slow on large int arrays with numpy 2.4 here.
  s = np.sort(x)
  return s[np.concatenate([[True], s[1:] != s[:-1]])] if len(s) else s


def _heldout(tr: protocol_lib.Pairs, te: protocol_lib.Pairs, n_items: int) -> HeldOut:
  """Rows = users present in the fold-in or held-out CSV, ascending uid."""
  uids = _sorted_unique(np.concatenate([tr.uid, te.uid]).astype(np.int64))
  return HeldOut(uids=uids,
                 fold_in=CSR.from_pairs(np.searchsorted(uids, tr.uid), tr.sid, len(uids), n_items),
                 held_out=CSR.from_pairs(np.searchsorted(uids, te.uid), te.sid, len(uids), n_items))


def _train_csr(train: protocol_lib.Pairs, n_items: int) -> CSR:
  # The authors' loader: shape (max uid + 1, n_items); training uids are 0 .. n_train-1.
  n_rows = int(train.uid.max()) + 1 if len(train) else 0
  return CSR.from_pairs(train.uid, train.sid, n_rows, n_items)


def _check_pairs(name: str, pairs: protocol_lib.Pairs, n_items: int) -> None:
  if len(pairs) and (pairs.sid.min() < 0 or pairs.sid.max() >= n_items or pairs.uid.min() < 0):
    raise DataError(f"{name}: sid outside [0, {n_items}) or negative uid; the CSVs do not match "
                    f"unique_sid.txt.")


def split_to_processed(split: dict, unique_sid: Sequence[str], meta: dict,
                       path: str = "") -> ProcessedData:
  """Builds the ProcessedData from the five CSVs' pairs.

  Args:
    split: {'train', 'validation_tr', 'validation_te', 'test_tr', 'test_te'} -> Pairs.
    unique_sid: raw item ids, position = sid.
    meta: the meta dict to attach.
    path: the directory (for ProcessedData.path).
  """
  n_items = len(unique_sid)
  for k, v in split.items():
    _check_pairs(k, v, n_items)
  return ProcessedData(train=_train_csr(split["train"], n_items),
                       validation=_heldout(split["validation_tr"], split["validation_te"], n_items),
                       test=_heldout(split["test_tr"], split["test_te"], n_items),
                       unique_sid=tuple(str(s) for s in unique_sid), meta=meta, path=path)


def _arrays(data: ProcessedData) -> dict:
  out = {"train_indptr": data.train.indptr, "train_indices": data.train.indices,
         "n_items": np.asarray(data.n_items, np.int64)}
  for name in ("validation", "test"):
    h = getattr(data, name)
    out[f"{name}_uids"] = h.uids
    out[f"{name}_fold_in_indptr"] = h.fold_in.indptr
    out[f"{name}_fold_in_indices"] = h.fold_in.indices
    out[f"{name}_held_out_indptr"] = h.held_out.indptr
    out[f"{name}_held_out_indices"] = h.held_out.indices
  return out


def counts(data: ProcessedData) -> dict:
  """Users / items / interactions per split (the statistics stored in meta.json)."""
  out = {"n_items": data.n_items,
         "train": {"users": data.train.n_rows, "interactions": data.train.nnz}}
  for name in ("validation", "test"):
    h = getattr(data, name)
    out[name] = {"users": h.n_users, "fold_in_interactions": h.fold_in.nnz,
                 "held_out_interactions": h.held_out.nnz,
                 "users_with_held_out": int(np.count_nonzero(h.held_out.row_lengths()))}
  out["n_users"] = data.train.n_rows + data.validation.n_users + data.test.n_users
  out["n_interactions"] = (data.train.nnz + sum(getattr(data, n).fold_in.nnz +
                                                getattr(data, n).held_out.nnz
                                                for n in ("validation", "test")))
  return out


def describe(data: ProcessedData) -> str:
  """Human-readable dataset statistics: users / items / interactions per split and density.

  Args:
    data: a loaded processed dataset.

  Returns:
    A multi-line string (no trailing newline).
  """
  c = counts(data)
  n_items = max(c["n_items"], 1)
  lines = []
  name = data.meta.get("name") or os.path.basename(data.path.rstrip("/")) or "(in memory)"
  lines.append(f"dataset {name}: {c['n_users']:,} users, {c['n_items']:,} items, "
               f"{c['n_interactions']:,} interactions "
               f"(density {100.0 * c['n_interactions'] / max(c['n_users'] * n_items, 1):.3f}%)")
  if data.path:
    lines.append(f"  processed directory: {data.path}")
  t = c["train"]
  lines.append(f"  train:      {t['users']:>10,} users {t['interactions']:>12,} interactions "
               f"(density {100.0 * t['interactions'] / max(t['users'] * n_items, 1):.3f}%, "
               f"{t['interactions'] / max(t['users'], 1):.1f} per user)")
  for name in ("validation", "test"):
    h = c[name]
    tot = h["fold_in_interactions"] + h["held_out_interactions"]
    lines.append(f"  {name + ':':<11} {h['users']:>10,} users {tot:>12,} interactions "
                 f"(fold-in {h['fold_in_interactions']:,} / held-out {h['held_out_interactions']:,}"
                 f"; {h['users_with_held_out']:,} users with held-out items; density "
                 f"{100.0 * tot / max(h['users'] * n_items, 1):.3f}%)")
  return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Loading.
# ------------------------------------------------------------------------------------------------


def _read_unique_sid(path: str) -> list[str]:
  with open(path, "r", encoding="utf-8") as f:
    lines = f.read().split("\n")
  if lines and lines[-1] == "":
    lines.pop()
  return lines


def is_complete(path: str) -> bool:
  """Whether `path` holds a complete processed directory written by this package."""
  return all(os.path.isfile(os.path.join(path, f))
             for f in ("meta.json", "arrays.npz", "unique_sid.txt") + LIANG_FILES)


def is_liang_dir(path: str) -> bool:
  """Whether `path` holds the authors' output (the five CSVs and unique_sid.txt)."""
  return all(os.path.isfile(os.path.join(path, f)) for f in ("unique_sid.txt",) + LIANG_FILES)


def read_meta(path: str) -> dict | None:
  try:
    with open(os.path.join(path, "meta.json"), "r", encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def load_processed(path: str) -> ProcessedData:
  """Loads a processed directory.

  Reads arrays.npz + unique_sid.txt + meta.json when present (fast); for a directory written by the
  authors' code (only the Liang CSVs + unique_sid.txt) builds the arrays from the CSVs.

  Args:
    path: the processed directory.

  Returns:
    The ProcessedData (rows and item order exactly as in the CSVs).

  Raises:
    DataError: not a processed directory.
  """
  path = os.path.abspath(os.path.expanduser(path))
  meta = read_meta(path)
  if meta is not None and os.path.isfile(os.path.join(path, "arrays.npz")):
    unique_sid = tuple(_read_unique_sid(os.path.join(path, "unique_sid.txt")))
    with np.load(os.path.join(path, "arrays.npz")) as z:
      a = {k: z[k] for k in z.files}
    n_items = int(a["n_items"])
    if n_items != len(unique_sid):
      raise DataError(f"{path}: arrays.npz has {n_items} items but unique_sid.txt has "
                      f"{len(unique_sid)} lines; the directory is inconsistent (delete it to "
                      f"re-prepare).")
    heldouts = {}
    for name in ("validation", "test"):
      heldouts[name] = HeldOut(
          uids=a[f"{name}_uids"],
          fold_in=CSR(a[f"{name}_fold_in_indptr"], a[f"{name}_fold_in_indices"], n_items),
          held_out=CSR(a[f"{name}_held_out_indptr"], a[f"{name}_held_out_indices"], n_items))
    return ProcessedData(train=CSR(a["train_indptr"], a["train_indices"], n_items),
                         validation=heldouts["validation"], test=heldouts["test"],
                         unique_sid=unique_sid, meta=meta, path=path)
  if is_liang_dir(path):
    unique_sid = _read_unique_sid(os.path.join(path, "unique_sid.txt"))
    split = {f[:-4]: read_liang_csv(os.path.join(path, f)) for f in LIANG_FILES}
    data = split_to_processed(split, unique_sid, {}, path)
    meta = {"source": "liang-csv", "name": os.path.basename(path), **(meta or {})}
    meta.setdefault("counts", counts(data))
    return ProcessedData(data.train, data.validation, data.test, data.unique_sid, meta, path)
  missing = [f for f in ("unique_sid.txt",) + LIANG_FILES
             if not os.path.isfile(os.path.join(path, f))]
  raise DataError(f"{path} is not a processed directory (missing: {', '.join(missing)}). Prepare it "
                  f"with `python -m ract_jax.data.prepare --config=...`, or point "
                  f"--config.data.processed_dir at the authors' pro_sg/ folder.")


# ------------------------------------------------------------------------------------------------
# Writing (atomic).
# ------------------------------------------------------------------------------------------------


def _write_contents(tmp: str, split: protocol_lib.LiangSplit, meta: dict) -> ProcessedData:
  with open(os.path.join(tmp, "unique_sid.txt"), "w", encoding="utf-8") as f:
    for sid in split.unique_sid:
      f.write(f"{sid}\n")
  parts = {"train": split.train, "validation_tr": split.validation_tr,
           "validation_te": split.validation_te, "test_tr": split.test_tr,
           "test_te": split.test_te}
  for name, pairs in parts.items():
    write_liang_csv(os.path.join(tmp, name + ".csv"), pairs)
  data = split_to_processed(parts, split.unique_sid, meta)
  meta = dict(meta, counts=counts(data))
  np.savez(os.path.join(tmp, "arrays.npz"), **_arrays(data))
  # meta.json last: its presence (inside the atomically renamed directory) marks completeness.
  with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as f:
    json.dump(meta, f, indent=2, sort_keys=True)
    f.write("\n")
  return data


def write_processed(split: protocol_lib.LiangSplit, path: str, meta: dict) -> None:
  """Writes a processed directory atomically.

  Everything goes into a temporary directory beside `path` (same parent, so the rename is atomic);
  on success an existing `path` is moved aside, the temporary directory renamed to `path` and the
  old one deleted. On any failure the temporary directory is removed and `path` is left as it was:
  a half-written processed directory is never visible under `path`.

  Args:
    split: the protocol output.
    path: the target directory.
    meta: metadata to store (counts are added).
  """
  path = os.path.abspath(path)
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
  old = None
  try:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a processed directory is shareable.
    _write_contents(tmp, split, meta)
    if os.path.lexists(path):
      old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
      os.rmdir(old)
      os.rename(path, old)
    try:
      os.rename(tmp, path)
    except OSError:
      if old is not None:
        os.rename(old, path)
        old = None
      raise
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Caching.
# ------------------------------------------------------------------------------------------------


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


def _reader_params(data_config) -> dict:
  """The config.data keys, besides the protocol's, that change what the reader produces."""
  fmt = data_config.format
  out = {"format": fmt, "id_type": data_config.get("id_type", "int")}
  if fmt == "delimited":
    out.update(delimiter=data_config.delimiter, header=bool(data_config.header),
               user_col=int(data_config.user_col), item_col=int(data_config.item_col),
               rating_col=int(data_config.rating_col))
  if fmt == "synthetic":
    out["synthetic"] = {k: data_config.synthetic[k] for k in sorted(data_config.synthetic.keys())}
  return out


def cache_key(data_config, fingerprints: Sequence[dict]) -> str:
  """sha1 over the format version, reader + protocol parameters and input fingerprints."""
  payload = {"format_version": FORMAT_VERSION, "reader": _reader_params(data_config),
             "protocol": protocol_lib.ProtocolParams.from_config(data_config).to_dict(),
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


def prepare_dataset(data_config, log: Log = print) -> str:
  """Reads the raw data, runs the protocol and writes the processed directory, unless cached.

  The cache key covers every config.data key that changes the output plus fingerprints of the input
  files. If the processed directory already holds a complete dataset with the same key, nothing is
  done; if it holds another key, it is re-prepared (replaced atomically) and the log says why.

  Args:
    data_config: the `config.data` block.
    log: callable(str) for progress and cache messages.

  Returns:
    The absolute path of the processed directory.

  Raises:
    DataError: missing / malformed input, parameters that do not fit the data, or a
      processed_dir that holds something else.
  """
  t0 = time.time()
  params = protocol_lib.ProtocolParams.from_config(data_config)
  params.validate()
  if params.rating_threshold is not None and not readers.has_ratings(data_config):
    raise DataError(
        f"config.data.rating_threshold={params.rating_threshold} is set, but the "
        f"{data_config.format!r} format has no rating values. Use "
        f"--config.data.rating_threshold=None" + (", or name the rating column "
        "(--config.data.rating_col=...)." if data_config.format == "delimited" else "."))
  files = readers.input_files(data_config)
  fps = [fingerprint(f) for f in files]
  if len(files) > 1:
    # Many small files (Netflix mv_*.txt): keep names relative to their folder.
    base = os.path.commonpath(files)
    for fp, f in zip(fps, files):
      fp["name"] = os.path.relpath(f, base)
  key = cache_key(data_config, fps)
  target = processed_dir_for(data_config, key)
  meta_old = read_meta(target)
  if meta_old is not None and meta_old.get("cache_key") == key and is_complete(target):
    log(f"data: using cached processed data {target} (cache key {key[:12]})")
    return target
  if os.path.lexists(target):
    if meta_old is not None:
      old_in = {"protocol": meta_old.get("protocol", {}), "reader": meta_old.get("reader", {}),
                "inputs": {str(i): v for i, v in enumerate(meta_old.get("inputs", []))}}
      new_in = {"protocol": params.to_dict(), "reader": _reader_params(data_config),
                "inputs": {str(i): v for i, v in enumerate(fps)}}
      changes = _diff(json.loads(json.dumps(old_in, default=str)),
                      json.loads(json.dumps(new_in, default=str)))
      why = "; ".join(changes[:8]) or f"format version {meta_old.get('format_version')} -> " \
                                         f"{FORMAT_VERSION} or an incomplete directory"
      log(f"data: re-preparing {target}: it holds cache key "
          f"{str(meta_old.get('cache_key'))[:12]}, need {key[:12]} ({why})")
    elif is_liang_dir(target):
      log(f"data: {target} holds the authors' Liang CSVs (no meta.json); using it as is. Its "
          f"protocol parameters cannot be checked, and config.data.raw_path is not read.")
      return target
    elif os.path.isdir(target) and not os.listdir(target):
      pass
    else:
      raise DataError(f"config.data.processed_dir={target} exists but is not a processed directory; "
                      f"refusing to overwrite it. Remove it or choose another "
                      f"--config.data.processed_dir.")
  log(f"data: preparing {data_config.name} ({data_config.format}) from "
      f"{', '.join(files[:3]) + (' ...' if len(files) > 3 else '') if files else 'synthetic'}")
  df = readers.read_raw(data_config)
  t_read = time.time() - t0
  log(f"data: read {len(df):,} rows in {t_read:.1f}s")
  split = protocol_lib.run_protocol(df, params, log=log)
  del df
  meta = {"format_version": FORMAT_VERSION, "cache_key": key, "name": data_config.name,
          "reader": _reader_params(data_config), "protocol": params.to_dict(),
          "raw_path": os.path.abspath(os.path.expanduser(data_config.raw_path))
                      if data_config.raw_path else "",
          "inputs": fps, "fingerprint": "size + mtime_ns + sha1 of the first and last MiB",
          "stats": split.stats, "created_unix": time.time()}
  write_processed(split, target, meta)
  log(f"data: wrote {target} in {time.time() - t0:.1f}s")
  return target


def load_dataset(data_config, log: Log = print) -> ProcessedData:
  """`prepare_dataset` then `load_processed`.

  Args:
    data_config: the `config.data` block.
    log: callable(str).

  Returns:
    The ProcessedData.
  """
  return load_processed(prepare_dataset(data_config, log=log))
