"""The processed directory: layout, round trips with the authors' format, caching, atomicity."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from configs import ml20m, msd
from ract_jax.data import atomic_dir, blockio, processed, protocol, store
from ract_jax.data.errors import DataError


def _cfg(tmp_path, which=ml20m, **over):
  c = which.get_config("smoke")
  c.data.processed_dir = str(tmp_path / "proc")
  for k, v in over.items():
    c.data[k] = v
  return c.data


def _quiet():
  lines = []
  return lines, lines.append


def _same(a, b):
  """Two ProcessedData hold identical arrays and item ids."""
  assert a.unique_sid == b.unique_sid
  for x, y in ((a.train, b.train), (a.validation.fold_in, b.validation.fold_in),
               (a.validation.held_out, b.validation.held_out), (a.test.fold_in, b.test.fold_in),
               (a.test.held_out, b.test.held_out)):
    np.testing.assert_array_equal(x.indptr, y.indptr)
    np.testing.assert_array_equal(x.indices, y.indices)
    assert x.n_items == y.n_items
  np.testing.assert_array_equal(a.validation.uids, b.validation.uids)
  np.testing.assert_array_equal(a.test.uids, b.test.uids)


# ---- Layout and round trips. -------------------------------------------------------------------


def test_layout_and_load(tmp_path):
  lines, log = _quiet()
  path = store.prepare_dataset(_cfg(tmp_path), log=log)
  assert path == str(tmp_path / "proc")
  assert sorted(os.listdir(path)) == sorted(("arrays.npz", "meta.json", "unique_sid.txt",
                                             "unique_uid.txt") + store.LIANG_FILES)
  with open(os.path.join(path, "train.csv")) as f:
    assert f.readline() == "uid,sid\n"
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(path).st_mode & 0o777 == 0o777 & ~umask
  data = store.load_processed(path)
  meta = json.load(open(os.path.join(path, "meta.json")))
  assert meta["format_version"] == store.FORMAT_VERSION and len(meta["cache_key"]) == 40
  assert meta["protocol"]["rating_threshold"] == 3.5 and meta["inputs"][0]["size"] > 0
  c = meta["counts"]
  assert c["train"]["users"] == data.train.n_rows and c["train"]["interactions"] == data.train.nnz
  assert c["validation"]["users"] == data.validation.n_users == 5
  assert data.n_items == len(data.unique_sid) and data.path == path
  # unique_uid.txt: the raw user id of each uid, all users (train, validation, test) in uid order.
  assert len(data.unique_uid) == meta["stats"]["users_after_filter"] == data.train.n_rows + 10
  raw = pd.read_csv(_cfg(tmp_path).raw_path)
  raw_pairs = set(zip(raw["userId"].astype(str), raw["movieId"].astype(str)))
  rows = np.repeat(np.arange(data.train.n_rows), data.train.row_lengths())
  assert {(data.unique_uid[u], data.unique_sid[i]) for u, i in zip(rows, data.train.indices)} <= \
      raw_pairs
  held = data.test.held_out
  rows = data.test.uids[np.repeat(np.arange(held.n_rows), held.row_lengths())]
  assert {(data.unique_uid[u], data.unique_sid[i]) for u, i in zip(rows, held.indices)} <= raw_pairs
  # Every training user has items; uids are consecutive per split.
  assert data.train.row_lengths().min() > 0
  n_tr = data.train.n_rows
  assert set(data.validation.uids.tolist()) <= set(range(n_tr, n_tr + 5))
  assert set(data.test.uids.tolist()) <= set(range(n_tr + 5, n_tr + 10))
  # The arrays are exactly the CSVs (rows grouped by uid, each row's items in CSV order).
  tr = pd.read_csv(os.path.join(path, "train.csv"))
  order = np.argsort(tr["uid"].to_numpy(), kind="stable")
  rows = np.repeat(np.arange(data.train.n_rows), data.train.row_lengths())
  np.testing.assert_array_equal(rows, tr["uid"].to_numpy()[order])
  np.testing.assert_array_equal(data.train.indices, tr["sid"].to_numpy()[order])


def _authors_loaders(path):
  """A port of the authors' loaders (`utils/data_loaders.py`, Liang's notebook)."""
  n_items = len(open(os.path.join(path, "unique_sid.txt")).read().splitlines())
  tp = pd.read_csv(os.path.join(path, "train.csv"))
  n_users = tp["uid"].max() + 1
  train = sp.csr_matrix((np.ones_like(tp["uid"]), (tp["uid"], tp["sid"])), dtype="float64",
                        shape=(n_users, n_items))
  out = {"train": (train, 0)}
  for name in ("validation", "test"):
    tp_tr = pd.read_csv(os.path.join(path, f"{name}_tr.csv"))
    tp_te = pd.read_csv(os.path.join(path, f"{name}_te.csv"))
    start_idx = min(tp_tr["uid"].min(), tp_te["uid"].min())
    end_idx = max(tp_tr["uid"].max(), tp_te["uid"].max())
    mats = []
    for t in (tp_tr, tp_te):
      mats.append(sp.csr_matrix((np.ones_like(t["uid"]), (t["uid"] - start_idx, t["sid"])),
                                dtype="float64", shape=(end_idx - start_idx + 1, n_items)))
    out[name] = (mats, start_idx)
  return out


def test_authors_loaders_read_ours(tmp_path):
  path = store.prepare_dataset(_cfg(tmp_path, msd), log=_quiet()[1])
  data = store.load_processed(path)
  ref = _authors_loaders(path)
  assert (ref["train"][0] != data.train.to_scipy()).nnz == 0
  for name in ("validation", "test"):
    (tr, te), start = ref[name]
    h = getattr(data, name)
    rows = h.uids - start
    assert (tr[rows] != h.fold_in.to_scipy()).nnz == 0
    assert (te[rows] != h.held_out.to_scipy()).nnz == 0
    others = np.setdiff1d(np.arange(tr.shape[0]), rows)  # Users absent from both CSVs: empty.
    assert tr[others].nnz == 0 and te[others].nnz == 0


def test_authors_directory_loads(tmp_path):
  path = store.prepare_dataset(_cfg(tmp_path), log=_quiet()[1])
  ours = store.load_processed(path)
  theirs_dir = tmp_path / "pro_sg"
  theirs_dir.mkdir()
  for f in ("unique_sid.txt",) + store.LIANG_FILES:
    shutil.copy(os.path.join(path, f), theirs_dir / f)
  theirs = store.load_processed(str(theirs_dir))
  _same(ours, theirs)
  assert theirs.unique_uid == () and len(ours.unique_uid) > 0  # The authors keep no raw user ids.
  assert theirs.meta["source"] == "liang-csv"
  assert theirs.meta["counts"] == ours.meta["counts"]
  # Written by pandas (as the authors' code does) instead of our writer: same result.
  for f in store.LIANG_FILES:
    df = pd.read_csv(theirs_dir / f)
    df.to_csv(theirs_dir / f, index=False)
  _same(ours, store.load_processed(str(theirs_dir)))


def test_writer_matches_pandas_to_csv(tmp_path):
  rng = np.random.RandomState(0)
  for n in (0, 1, 7, 1000):
    uid = rng.randint(0, 10**rng.randint(1, 9), n)
    uid[: min(n, 3)] = [0, 9, 10][: min(n, 3)]
    pairs = protocol.Pairs(uid.astype(np.int64), rng.randint(0, 123456, n).astype(np.int64))
    store.write_liang_csv(str(tmp_path / "a.csv"), pairs)
    pd.DataFrame({"uid": pairs.uid, "sid": pairs.sid}).to_csv(tmp_path / "b.csv", index=False)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_format_lines_bytes_columns():
  ids = np.array([b"ab", b"c", b"def"], dtype="S3")
  out = b"".join(blockio.format_lines([ids, np.array([5, 10, 0])], sep=b"\t", chunk=2))
  assert out == b"ab\t5\nc\t10\ndef\t0\n"


def test_not_a_processed_directory(tmp_path):
  with pytest.raises(DataError, match="not a processed directory"):
    store.load_processed(str(tmp_path))


# ---- Caching. -----------------------------------------------------------------------------------


def test_cache_hit_does_not_rewrite(tmp_path):
  cfg = _cfg(tmp_path)
  path = store.prepare_dataset(cfg, log=_quiet()[1])
  mtimes = {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in os.listdir(path)}
  lines, log = _quiet()
  assert store.prepare_dataset(cfg, log=log) == path
  assert any("using cached" in l for l in lines), lines
  assert {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in os.listdir(path)} == mtimes


def test_cache_miss_on_parameter_change(tmp_path):
  cfg = _cfg(tmp_path)
  path = store.prepare_dataset(cfg, log=_quiet()[1])
  key1 = store.read_meta(path)["cache_key"]
  cfg.heldout_users = 6
  lines, log = _quiet()
  assert store.prepare_dataset(cfg, log=log) == path
  assert any("re-preparing" in l and "heldout_users: 5 -> 6" in l for l in lines), lines
  meta = store.read_meta(path)
  assert meta["cache_key"] != key1 and meta["protocol"]["heldout_users"] == 6
  assert store.load_processed(path).validation.n_users == 6
  assert not [f for f in os.listdir(tmp_path) if f.startswith(".proc")]  # No leftovers.
  # Keys that do not affect this format do not invalidate it.
  cfg.delimiter = "tab"
  assert store.cache_key(cfg, []) == store.cache_key(_cfg(tmp_path, heldout_users=6), [])


def test_cache_miss_on_input_change(tmp_path):
  raw = tmp_path / "ratings.csv"
  shutil.copy(_cfg(tmp_path).raw_path, raw)
  cfg = _cfg(tmp_path, raw_path=str(raw))
  path = store.prepare_dataset(cfg, log=_quiet()[1])
  key1 = store.read_meta(path)["cache_key"]
  with open(raw, "a") as f:
    f.write("999,1,5.0,1200000000\n")
  lines, log = _quiet()
  store.prepare_dataset(cfg, log=log)
  assert store.read_meta(path)["cache_key"] != key1
  assert any("re-preparing" in l and "inputs.0.size" in l for l in lines), lines


def test_default_processed_dir(tmp_path, monkeypatch):
  monkeypatch.setenv("RACT_JAX_CACHE", str(tmp_path / "cache"))
  cfg = _cfg(tmp_path)
  cfg.processed_dir = ""
  p1 = store.prepare_dataset(cfg, log=_quiet()[1])
  key = store.read_meta(p1)["cache_key"]
  assert p1 == str(tmp_path / "cache" / "processed" / f"ml20m-smoke-{key[:12]}")
  cfg.min_user_count = 6
  p2 = store.prepare_dataset(cfg, log=_quiet()[1])
  assert p2 != p1 and os.path.isdir(p1) and os.path.isdir(p2)
  monkeypatch.delenv("RACT_JAX_CACHE")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  assert store.cache_root() == str(tmp_path / "home" / ".cache" / "ract_jax")


def test_existing_foreign_directory(tmp_path):
  cfg = _cfg(tmp_path)
  os.makedirs(cfg.processed_dir)
  (tmp_path / "proc" / "notes.txt").write_text("mine")
  with pytest.raises(DataError, match="refusing to overwrite"):
    store.prepare_dataset(cfg, log=_quiet()[1])
  assert (tmp_path / "proc" / "notes.txt").read_text() == "mine"
  os.remove(tmp_path / "proc" / "notes.txt")  # An empty directory is fine.
  store.prepare_dataset(cfg, log=_quiet()[1])
  assert store.is_complete(cfg.processed_dir)


def test_authors_directory_as_processed_dir_is_used_as_is(tmp_path):
  src = store.prepare_dataset(_cfg(tmp_path), log=_quiet()[1])
  theirs = tmp_path / "pro_sg"
  theirs.mkdir()
  for f in ("unique_sid.txt",) + store.LIANG_FILES:
    shutil.copy(os.path.join(src, f), theirs / f)
  cfg = _cfg(tmp_path)
  cfg.processed_dir = str(theirs)
  lines, log = _quiet()
  assert store.prepare_dataset(cfg, log=log) == str(theirs)
  assert any("authors' Liang CSVs" in l for l in lines)
  assert not (theirs / "meta.json").exists()


# ---- Atomicity. ---------------------------------------------------------------------------------


class _Boom(RuntimeError):
  pass


def test_failure_leaves_no_half_written_directory(tmp_path, monkeypatch):
  cfg = _cfg(tmp_path)

  def fail(*a, **k):
    raise _Boom("disk full")

  monkeypatch.setattr(processed.np, "savez", fail)  # After the CSVs, before arrays.npz / meta.json.
  with pytest.raises(_Boom):
    store.prepare_dataset(cfg, log=_quiet()[1])
  assert os.listdir(tmp_path) == []  # Neither the target nor a temporary directory.
  monkeypatch.undo()

  # A complete directory is replaced only by a complete one: a failed re-prepare keeps it.
  path = store.prepare_dataset(cfg, log=_quiet()[1])
  key = store.read_meta(path)["cache_key"]
  monkeypatch.setattr(processed, "write_liang_csv", fail)
  cfg.heldout_users = 6
  with pytest.raises(_Boom):
    store.prepare_dataset(cfg, log=_quiet()[1])
  assert sorted(os.listdir(tmp_path)) == ["proc"]
  assert store.read_meta(path)["cache_key"] == key and store.is_complete(path)
  assert store.load_processed(path).validation.n_users == 5


def test_failed_rename_restores_old_directory(tmp_path, monkeypatch):
  cfg = _cfg(tmp_path)
  path = store.prepare_dataset(cfg, log=_quiet()[1])
  key = store.read_meta(path)["cache_key"]
  real_rename = os.rename

  def rename(src, dst):
    if os.path.basename(src).startswith(".proc.tmp-"):
      raise OSError("rename failed")
    return real_rename(src, dst)

  monkeypatch.setattr(store.os, "rename", rename)
  cfg.heldout_users = 6
  with pytest.raises(OSError):
    store.prepare_dataset(cfg, log=_quiet()[1])
  assert sorted(os.listdir(tmp_path)) == ["proc"]
  assert store.read_meta(path)["cache_key"] == key


def test_fingerprint(tmp_path):
  p = tmp_path / "f.bin"
  p.write_bytes(os.urandom(3 << 20))
  a = store.fingerprint(str(p))
  assert a == store.fingerprint(str(p))
  data = bytearray(p.read_bytes())
  data[-5] ^= 1  # Same size, last MiB changed.
  p.write_bytes(bytes(data))
  os.utime(p, ns=(a["mtime_ns"], a["mtime_ns"]))
  b = store.fingerprint(str(p))
  assert b["size"] == a["size"] and b["mtime_ns"] == a["mtime_ns"]
  assert b["sha1_head_tail"] != a["sha1_head_tail"]


def test_threshold_on_format_without_ratings(tmp_path):
  from configs import custom  # pylint: disable=g-import-not-at-top
  cfg = custom.get_config("smoke").data
  cfg.processed_dir = str(tmp_path / "p")
  cfg.rating_threshold = 3.5
  with pytest.raises(DataError, match="rating_col"):
    store.prepare_dataset(cfg, log=_quiet()[1])
  cfg.rating_col = 2
  store.prepare_dataset(cfg, log=_quiet()[1])  # clicks > 3.5
  assert store.load_processed(cfg.processed_dir).meta["stats"]["rows_after_threshold"] < \
      store.load_processed(cfg.processed_dir).meta["stats"]["rows_raw"]


# ---- Damaged files. -----------------------------------------------------------------------------


def _damage(path: str, name: str, how: str) -> str:
  file = os.path.join(path, name)
  if how == "truncated":
    with open(file, "rb") as f:
      data = f.read()
    with open(file, "wb") as f:
      f.write(data[: len(data) // 2])
  else:
    with open(file, "wb") as f:
      f.write(b"not what it should be")
  return file


@pytest.mark.parametrize("name,how", [("arrays.npz", "garbage"), ("arrays.npz", "truncated"),
                                      ("meta.json", "truncated"), ("unique_sid.txt", "garbage")])
def test_damaged_cache_is_reported_and_prepared_again(tmp_path, monkeypatch, name, how):
  monkeypatch.setenv("RACT_JAX_CACHE", str(tmp_path / "cache"))
  cfg = _cfg(tmp_path, processed_dir="")
  good = store.load_dataset(cfg, log=_quiet()[1])
  file = _damage(good.path, name, how)
  lines, log = _quiet()
  data = store.load_dataset(cfg, log=log)
  assert any("warning" in l and file in l and "re-preparing" in l for l in lines), lines
  assert any(l.startswith("data: wrote") for l in lines), lines
  assert data.path == good.path
  _same(data, good)
  assert data.unique_uid == good.unique_uid


@pytest.mark.parametrize("name", ["arrays.npz", "meta.json", "unique_uid.txt"])
def test_damaged_processed_dir_of_the_user_is_an_error(tmp_path, name):
  cfg = _cfg(tmp_path)
  path = store.prepare_dataset(cfg, log=_quiet()[1])
  if name == "unique_uid.txt":  # Readable, but fewer users than the arrays hold.
    with open(os.path.join(path, name)) as f:
      lines = f.read().splitlines()
    with open(os.path.join(path, name), "w") as f:
      f.write("\n".join(lines[:3]) + "\n")
    file = os.path.join(path, name)
  else:
    file = _damage(path, name, "truncated")
  before = sorted(os.listdir(path))
  for call in (store.load_dataset, store.prepare_dataset):
    with pytest.raises(DataError) as e:
      call(cfg, log=_quiet()[1])
    msg = str(e.value)
    assert msg.startswith(f"{file}: cannot be read") and "delete it" in msg, msg
    assert "--config.data.processed_dir" in msg
  with pytest.raises(DataError, match="cannot be read"):
    store.load_processed(path)
  assert sorted(os.listdir(path)) == before  # The user's directory is not touched.


def test_format_version_1_directory_is_prepared_again(tmp_path):
  cfg = _cfg(tmp_path)
  path = store.prepare_dataset(cfg, log=_quiet()[1])
  meta = store.read_meta(path)
  meta["format_version"] = 1  # What the previous version wrote: no unique_uid.txt, another key.
  meta["cache_key"] = "0" * 40
  with open(os.path.join(path, "meta.json"), "w") as f:
    json.dump(meta, f)
  os.remove(os.path.join(path, "unique_uid.txt"))
  assert store.load_processed(path).unique_uid == ()  # Still loads, without raw user ids.
  lines, log = _quiet()
  data = store.load_dataset(cfg, log=log)
  assert any("re-preparing" in l and "format version 1 -> 2" in l for l in lines), lines
  assert data.meta["format_version"] == store.FORMAT_VERSION == 2 and len(data.unique_uid) > 0


# ---- Scratch directories of killed preparations. ---------------------------------------------


def _scratch(parent, name: str, age_s: float = 0.0) -> str:
  path = os.path.join(parent, name)
  os.makedirs(path)
  with open(os.path.join(path, "train.csv"), "w") as f:
    f.write("uid,sid\n")
  if age_s:
    t = os.stat(path).st_mtime - age_s
    for p in (os.path.join(path, "train.csv"), path):
      os.utime(p, (t, t))
  return path


def _dead_pid() -> int:
  p = subprocess.Popen([sys.executable, "-c", "pass"])
  p.wait()
  return p.pid


def test_stale_scratch_directories_are_removed(tmp_path):
  host = atomic_dir._host()
  day = atomic_dir.STALE_AFTER_S
  stale = [_scratch(tmp_path, f".proc.tmp-{host}-{_dead_pid()}-abcd1234"),  # Its process ended.
           _scratch(tmp_path, f".proc.old-{host}-{_dead_pid()}-abcd1235"),
           _scratch(tmp_path, ".proc.tmp-otherhost-1-abcd1236", age_s=day + 60),  # Abandoned.
           _scratch(tmp_path, ".proc.tmp-q1w2e3r4", age_s=day + 60)]  # Format version 1's name.
  live = [_scratch(tmp_path, f".proc.tmp-{host}-{os.getpid()}-abcd1237"),  # Running (us).
          _scratch(tmp_path, ".proc.tmp-otherhost-1-abcd1238", age_s=day - 600),  # Recent.
          _scratch(tmp_path, ".other.tmp-otherhost-1-abcd1239", age_s=day + 60)]  # Not ours.
  # A dead pid in the name, but a live process holds the lock (pid namespaces, reused pids).
  held = _scratch(tmp_path, f".proc.tmp-{host}-{_dead_pid()}-abcd1240")
  fd = os.open(held, os.O_RDONLY)
  fcntl.flock(fd, fcntl.LOCK_EX)
  lines, log = _quiet()
  try:
    store.prepare_dataset(_cfg(tmp_path), log=log)  # processed_dir = tmp_path/proc
  finally:
    os.close(fd)
  for p in stale:
    assert not os.path.exists(p) and any(f"removed stale temporary directory {p}" in l
                                         for l in lines), (p, lines)
  assert all(os.path.isdir(p) for p in live + [held])
  assert any("which has ended" in l for l in lines) and any("untouched for 24 hours" in l
                                                            for l in lines)


_KILLED_WRITER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from ract_jax.data import atomic_dir
def fill(tmp):
  open(tmp + "/train.csv", "w").close()
  print("writing", flush=True)
  time.sleep(600)
atomic_dir.write_atomically(sys.argv[2], fill)
"""


def test_killed_preparation_leaves_scratch_that_the_next_one_removes(tmp_path):
  target = str(tmp_path / "proc")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, repo, target],
                           stdout=subprocess.PIPE, text=True)
  try:
    assert child.stdout.readline().strip() == "writing"
    (scratch,) = [p for p in os.listdir(tmp_path) if p.startswith(".proc.tmp-")]
    # While it writes, its directory is never removed.
    assert atomic_dir.remove_stale_scratch(str(tmp_path), _quiet()[1]) == []
  finally:
    child.kill()
    child.wait()
  assert os.path.isdir(tmp_path / scratch)  # SIGKILL: no cleanup ran.
  lines, log = _quiet()
  store.prepare_dataset(_cfg(tmp_path), log=log)
  assert not os.path.exists(tmp_path / scratch)
  assert any(scratch in l and "which has ended" in l for l in lines), lines
  assert sorted(os.listdir(tmp_path)) == ["proc"]


# ---- Duplicate rows, end to end. ---------------------------------------------------------------


def test_file_with_every_row_twice_gives_the_same_split(tmp_path):
  # Before duplicates were dropped, a file like this put most held-out items in the fold-in too.
  cfg = _cfg(tmp_path)
  clean = store.load_dataset(cfg, log=_quiet()[1])
  with open(cfg.raw_path) as f:
    header, *rows = f.read().splitlines()
  doubled = tmp_path / "ratings.csv"
  doubled.write_text("\n".join([header] + [r for row in rows for r in (row, row)]) + "\n")
  cfg2 = _cfg(tmp_path, raw_path=str(doubled), processed_dir=str(tmp_path / "proc2"))
  lines, log = _quiet()
  data = store.load_dataset(cfg2, log=log)
  _same(data, clean)
  assert data.unique_uid == clean.unique_uid
  kept = clean.meta["stats"]["rows_after_threshold"]
  assert data.meta["stats"]["duplicates_dropped"] == kept and kept > 0
  assert clean.meta["stats"]["duplicates_dropped"] == 0
  assert any(f"dropped {kept:,} duplicate" in l for l in lines), lines
  assert f"{kept:,} duplicate (user, item) rows dropped" in store.describe(data)
  for h in (data.validation, data.test):
    fold = h.fold_in.to_dense()
    assert not (fold * h.held_out.to_dense()).any()
