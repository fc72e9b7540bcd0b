"""The processed directory: Liang-compatible CSVs + fast arrays, written atomically, loaded back.

Layout (everything directly inside the directory):

  train.csv, validation_tr.csv, validation_te.csv, test_tr.csv, test_te.csv
      `uid,sid` header, integer rows: byte-for-byte what the authors' `setup_data.py` writes
      (pandas `to_csv(index=False)`), so their loaders read ours and ours read theirs.
  unique_sid.txt
      raw item ids, one per line; line number = sid.
  unique_uid.txt
      raw user ids, one per line; line number = uid (train users, then validation, then test).
  arrays.npz
      the CSR arrays (`train_indptr`, `train_indices`, and for `validation` / `test`: `_uids`,
      `_fold_in_indptr`, `_fold_in_indices`, `_held_out_indptr`, `_held_out_indices`), uncompressed.
  meta.json
      counts per split, protocol parameters, input fingerprints, `cache_key`, `format_version`.

`load_processed` reads arrays.npz + the id files + meta.json. A directory written by the authors'
code (CSVs + unique_sid.txt only) loads too: the arrays are then built from the CSVs.
"""

from __future__ import annotations

import hashlib

import json
import os
import zipfile
from typing import Sequence

import numpy as np
import pandas as pd

from ract_jax.data import atomic_dir
from ract_jax.data.blockio import format_lines
from ract_jax.data.csr import CSR, HeldOut, ProcessedData
from ract_jax.data.errors import DamagedFileError, DataError
from ract_jax.data.protocol import LiangSplit, Pairs

# 2: unique_uid.txt; duplicate (user, item) rows dropped by the protocol.
FORMAT_VERSION = 2
LIANG_FILES = ("train.csv", "validation_tr.csv", "validation_te.csv", "test_tr.csv", "test_te.csv")
OUR_FILES = ("meta.json", "arrays.npz", "unique_sid.txt", "unique_uid.txt") + LIANG_FILES


# ---- The Liang CSVs. -----------------------------------------------------------------------------


def write_liang_csv(path: str, pairs: Pairs) -> None:
  """Writes `uid,sid` rows exactly as pandas' `DataFrame.to_csv(index=False)` does."""
  with open(path, "wb") as f:
    f.write(b"uid,sid\n")
    for piece in format_lines([pairs.uid, pairs.sid]):
      f.write(piece)


def read_liang_csv(path: str) -> Pairs:
  """Reads a Liang `uid,sid` CSV (ours or the authors')."""
  try:
    df = pd.read_csv(path, dtype={"uid": np.int64, "sid": np.int64}, engine="c")
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"{path}: not a Liang 'uid,sid' CSV: {e}") from None
  if list(df.columns[:2]) != ["uid", "sid"]:
    raise DataError(f"{path}: expected the header 'uid,sid', found {list(df.columns)}.")
  return Pairs(df["uid"].to_numpy(), df["sid"].to_numpy())


# ---- In memory: the five CSVs' pairs -> ProcessedData. -------------------------------------------


def _sorted_unique(x: np.ndarray) -> np.ndarray:
  # np.unique / np.union1d are pathologically slow on large int arrays with numpy 2.4 here.
  s = np.sort(x)
  return s[np.concatenate([[True], s[1:] != s[:-1]])] if len(s) else s


def _heldout(tr: Pairs, te: Pairs, n_items: int) -> HeldOut:
  """Rows = users present in the fold-in or held-out CSV, ascending uid."""
  uids = _sorted_unique(np.concatenate([tr.uid, te.uid]).astype(np.int64))
  return HeldOut(uids=uids,
                 fold_in=CSR.from_pairs(np.searchsorted(uids, tr.uid), tr.sid, len(uids), n_items),
                 held_out=CSR.from_pairs(np.searchsorted(uids, te.uid), te.sid, len(uids), n_items))


def _train_csr(train: Pairs, n_items: int) -> CSR:
  # The authors' loader: shape (max uid + 1, n_items); training uids are 0 .. n_train-1.
  n_rows = int(train.uid.max()) + 1 if len(train) else 0
  return CSR.from_pairs(train.uid, train.sid, n_rows, n_items)


def _check_pairs(name: str, pairs: Pairs, n_items: int) -> None:
  if len(pairs) and (pairs.sid.min() < 0 or pairs.sid.max() >= n_items or pairs.uid.min() < 0):
    raise DataError(f"{name}: sid outside [0, {n_items}) or negative uid; the CSVs do not match "
                    f"unique_sid.txt.")


def split_to_processed(split: dict, unique_sid: Sequence[str], meta: dict, path: str = "",
                       unique_uid: Sequence[str] = ()) -> ProcessedData:
  """Builds the ProcessedData from the five CSVs' pairs.

  Args:
    split: {'train', 'validation_tr', 'validation_te', 'test_tr', 'test_te'} -> Pairs.
    unique_sid: raw item ids, position = sid.
    meta: the meta dict to attach.
    path: the directory (for ProcessedData.path).
    unique_uid: raw user ids, position = uid (empty if unknown).
  """
  n_items = len(unique_sid)
  for k, v in split.items():
    _check_pairs(k, v, n_items)
  return ProcessedData(train=_train_csr(split["train"], n_items),
                       validation=_heldout(split["validation_tr"], split["validation_te"], n_items),
                       test=_heldout(split["test_tr"], split["test_te"], n_items),
                       unique_sid=tuple(str(s) for s in unique_sid), meta=meta, path=path,
                       unique_uid=tuple(str(u) for u in unique_uid))


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


def content_hash(data: ProcessedData) -> str:
  """sha1 of the split itself (every CSR array and the item ids), independent of where the data
  came from or when it was prepared: what a workdir's identity records of its data."""
  h = hashlib.sha1()
  for name, array in sorted(_arrays(data).items()):
    h.update(name.encode())
    h.update(np.ascontiguousarray(array).tobytes())
  h.update("\n".join(data.unique_sid).encode())
  return h.hexdigest()


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
  duplicates = data.meta.get("stats", {}).get("duplicates_dropped", 0)
  if duplicates:
    lines.append(f"  raw data:   {duplicates:,} duplicate (user, item) rows dropped (first kept)")
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


# ---- Loading. ------------------------------------------------------------------------------------


def _damaged(path: str, name: str, problem: str) -> DamagedFileError:
  return DamagedFileError(
      os.path.join(path, name), problem,
      f"The processed directory {path} is damaged: delete it to have it prepared again from "
      f"config.data.raw_path, or set --config.data.processed_dir to another directory.")


def _read_ids(path: str, name: str) -> tuple:
  """The lines of an id file (`unique_sid.txt`, `unique_uid.txt`) of directory `path`."""
  try:
    with open(os.path.join(path, name), "r", encoding="utf-8") as f:
      lines = f.read().split("\n")
  except (OSError, ValueError) as e:
    raise _damaged(path, name, f"{type(e).__name__}: {e}") from None
  if lines and lines[-1] == "":
    lines.pop()
  return tuple(lines)


def is_complete(path: str) -> bool:
  """Whether `path` holds a complete processed directory written by this package."""
  return all(os.path.isfile(os.path.join(path, f)) for f in OUR_FILES)


def is_liang_dir(path: str) -> bool:
  """Whether `path` holds the authors' output (the five CSVs and unique_sid.txt)."""
  return all(os.path.isfile(os.path.join(path, f)) for f in ("unique_sid.txt",) + LIANG_FILES)


def read_meta(path: str) -> dict | None:
  """The content of `path/meta.json`; None if there is none.

  Raises:
    DamagedFileError: meta.json exists but is not a JSON object.
  """
  file = os.path.join(path, "meta.json")
  if not os.path.isfile(file):
    return None
  try:
    with open(file, "r", encoding="utf-8") as f:
      meta = json.load(f)
  except (OSError, ValueError) as e:
    raise _damaged(path, "meta.json", f"{type(e).__name__}: {e}") from None
  if not isinstance(meta, dict):
    raise _damaged(path, "meta.json", f"a JSON {type(meta).__name__}, not an object")
  return meta


def _load_ours(path: str, meta: dict) -> ProcessedData:
  unique_sid = _read_ids(path, "unique_sid.txt")
  unique_uid = _read_ids(path, "unique_uid.txt") if meta.get("format_version", 1) >= 2 else ()
  try:
    with np.load(os.path.join(path, "arrays.npz")) as z:
      a = {k: z[k] for k in z.files}
    n_items = int(a["n_items"])
    heldouts = {name: HeldOut(
        uids=a[f"{name}_uids"],
        fold_in=CSR(a[f"{name}_fold_in_indptr"], a[f"{name}_fold_in_indices"], n_items),
        held_out=CSR(a[f"{name}_held_out_indptr"], a[f"{name}_held_out_indices"], n_items))
                for name in ("validation", "test")}
    train = CSR(a["train_indptr"], a["train_indices"], n_items)
  except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as e:
    raise _damaged(path, "arrays.npz", f"{type(e).__name__}: {e}") from None
  if n_items != len(unique_sid):
    raise _damaged(path, "unique_sid.txt", f"{len(unique_sid)} lines, but arrays.npz has {n_items} "
                   f"items")
  n_users = max([train.n_rows] + [int(h.uids.max()) + 1 for h in heldouts.values() if h.n_users])
  if unique_uid and len(unique_uid) < n_users:
    raise _damaged(path, "unique_uid.txt", f"{len(unique_uid)} lines, but arrays.npz has uids up "
                   f"to {n_users - 1}")
  return ProcessedData(train=train, validation=heldouts["validation"], test=heldouts["test"],
                       unique_sid=unique_sid, meta=meta, path=path, unique_uid=unique_uid)


def load_processed(path: str) -> ProcessedData:
  """Loads a processed directory.

  Reads arrays.npz + the id files + meta.json when present (fast); for a directory written by the
  authors' code (only the Liang CSVs + unique_sid.txt) builds the arrays from the CSVs.

  Args:
    path: the processed directory.

  Returns:
    The ProcessedData (rows and item order exactly as in the CSVs; `unique_uid` empty for the
    authors' directories, which do not record raw user ids).

  Raises:
    DamagedFileError: a file of the directory cannot be read (the message names it).
    DataError: not a processed directory.
  """
  path = os.path.abspath(os.path.expanduser(path))
  meta = read_meta(path)
  if meta is not None and os.path.isfile(os.path.join(path, "arrays.npz")):
    return _load_ours(path, meta)
  if is_liang_dir(path):
    unique_sid = _read_ids(path, "unique_sid.txt")
    split = {f[:-4]: read_liang_csv(os.path.join(path, f)) for f in LIANG_FILES}
    data = split_to_processed(split, unique_sid, {}, path)
    meta = {"source": "liang-csv", "name": os.path.basename(path), **(meta or {})}
    meta.setdefault("counts", counts(data))
    return ProcessedData(data.train, data.validation, data.test, data.unique_sid, meta, path)
  missing = [f for f in ("unique_sid.txt",) + LIANG_FILES
             if not os.path.isfile(os.path.join(path, f))]
  raise DataError(f"{path} is not a processed directory (missing: {', '.join(missing)}). Prepare "
                  f"it with `python -m ract_jax.data.prepare --config=...`, or point "
                  f"--config.data.processed_dir at the authors' pro_sg/ folder.")


# ---- Writing (atomic). ---------------------------------------------------------------------------


def _write_ids(path: str, ids) -> None:
  with open(path, "w", encoding="utf-8") as f:
    for x in ids:
      f.write(f"{x}\n")


def _write_contents(tmp: str, split: LiangSplit, meta: dict) -> None:
  _write_ids(os.path.join(tmp, "unique_sid.txt"), split.unique_sid)
  _write_ids(os.path.join(tmp, "unique_uid.txt"), split.unique_uid)
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


def write_processed(split: LiangSplit, path: str, meta: dict) -> None:
  """Writes a processed directory atomically (`atomic_dir.write_atomically`).

  A half-written processed directory is never visible under `path`: on any failure `path` is left
  as it was.

  Args:
    split: the protocol output.
    path: the target directory.
    meta: metadata to store (counts are added).
  """
  atomic_dir.write_atomically(path, lambda tmp: _write_contents(tmp, split, meta))
