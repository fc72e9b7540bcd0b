"""The raw formats (ract_jax.data.formats): each on its fixture (against a naive line-by-line
parse), the registry, and bad input."""

from __future__ import annotations

import os
import shutil

import ml_collections
import numpy as np
import pandas as pd
import pytest

from ract_jax import config_base as base
from ract_jax.data import blockio, formats
from ract_jax.data.errors import DataError
from ract_jax.data.formats import generic, movielens, msd, netflix

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def _fx(rel: str) -> str:
  return os.path.join(FIX, rel)


def _naive(path: str, sep, skip: int = 0, cols=(0, 1, 2), conv=(int, int, float)):
  """(user, item, rating) tuples by plain Python splitting."""
  out = []
  with open(path) as f:
    for k, line in enumerate(f):
      if k < skip or not line.strip():
        continue
      fields = line.rstrip("\n").split(sep) if sep else line.split()
      out.append(tuple(c(fields[j]) for c, j in zip(conv, cols)))
  return out


def _tuples(df: pd.DataFrame, rating=True):
  u = df["user"].astype(object).tolist() if isinstance(df["user"].dtype, pd.CategoricalDtype) \
      else df["user"].tolist()
  i = df["item"].astype(object).tolist() if isinstance(df["item"].dtype, pd.CategoricalDtype) \
      else df["item"].tolist()
  if not rating:
    return list(zip(u, i))
  return list(zip(u, i, df["rating"].tolist()))


def _check_frame(df: pd.DataFrame):
  assert list(df.columns) == ["user", "item", "rating"]
  assert df["rating"].dtype == np.float64


# ---- Each format on its fixture. --------------------------------------------------------------


def test_ml20m():
  path = _fx("ml20m/ratings.csv")
  df = movielens.read_ml20m(path)
  _check_frame(df)
  assert df["user"].dtype == np.int64 and df["item"].dtype == np.int64
  assert _tuples(df) == _naive(path, ",", skip=1)


def test_ml1m():
  path = _fx("ml1m/ratings.dat")
  df = movielens.read_ml1m(path)
  _check_frame(df)
  assert _tuples(df) == _naive(path, "::")


def test_ml100k():
  path = _fx("ml100k/u.data")
  df = movielens.read_ml100k(path)
  _check_frame(df)
  assert _tuples(df) == _naive(path, "\t")


def test_msd_string_ids_sorted_categories():
  path = _fx("msd/train_triplets.txt")
  df = msd.read_msd(path)
  _check_frame(df)
  assert isinstance(df["user"].dtype, pd.CategoricalDtype)
  cats = list(df["user"].cat.categories)
  assert cats == sorted(cats)
  assert _tuples(df) == _naive(path, "\t", conv=(str, str, float))


def _msd_general(path):
  """read_msd through the general (pandas) path."""
  from unittest import mock  # pylint: disable=g-import-not-at-top
  with mock.patch.object(msd, "read_triplets_fast", lambda p: None):
    return msd.read_msd(path)


def test_msd_fast_path_equals_general_path(tmp_path, monkeypatch):
  path = _fx("msd/train_triplets.txt")
  fast = msd.read_triplets_fast(path)
  assert fast is not None
  pd.testing.assert_frame_equal(fast, _msd_general(path))
  # Tiny blocks (ids split across blocks) and forced hash collisions.
  monkeypatch.setattr(blockio, "BLOCK_BYTES", 1000)
  pd.testing.assert_frame_equal(msd.read_triplets_fast(path), fast)
  monkeypatch.setattr(blockio, "row_hash", lambda w: (w[:, 0] % np.uint64(3)).astype(np.int64))
  assert msd.read_triplets_fast(path) is None
  pd.testing.assert_frame_equal(msd.read_msd(path), fast)  # Falls back, same result.


@pytest.mark.parametrize("text", [
    "aa\tSO1\t3\nbb\tSO22\t1\n",  # Variable-width song ids.
    "aa\tSO1\t3\r\nbb\tSO2\t1\r\n",  # CRLF.
    "aa\tSO1\t3\nbb\tSO2\t+1\n",  # A count pandas accepts but the fast path does not.
    "aa\tSO1\t3\nbb\tSO2\t1",  # No final newline (fast path).
])
def test_msd_unusual_but_valid(tmp_path, text):
  p = tmp_path / "t.txt"
  p.write_text(text, newline="")
  df = msd.read_msd(str(p))
  pd.testing.assert_frame_equal(df, _msd_general(str(p)))
  assert df["rating"].tolist() == [3.0, 1.0] and df["user"].astype(str).tolist() == ["aa", "bb"]


def test_netflix_layouts_agree():
  ts = netflix.read_netflix(_fx("netflix/training_set"))
  _check_frame(ts)
  # Naive: movie by movie (files in id order), customers in file order.
  expected = []
  for m in range(1, 31):
    with open(_fx(f"netflix/training_set/mv_{m:07d}.txt")) as f:
      lines = f.read().splitlines()
    assert lines[0] == f"{m}:"
    expected += [(int(l.split(",")[0]), m, float(l.split(",")[1])) for l in lines[1:]]
  assert _tuples(ts) == expected
  # Kaggle combined_data_*.txt: the folder, the parent folder, and single files.
  kag = netflix.read_netflix(_fx("netflix/kaggle"))
  pd.testing.assert_frame_equal(kag, ts)
  one = netflix.read_netflix(_fx("netflix/kaggle/combined_data_2.txt"))
  assert _tuples(one) == [t for t in expected if t[1] >= 16]
  # A folder holding training_set/ (the original download's layout).
  pd.testing.assert_frame_equal(netflix.read_netflix(_fx("netflix")), ts)


def test_netflix_small_blocks(monkeypatch):
  # Blocks that cut through movies and files must not change the result.
  full = netflix.read_netflix(_fx("netflix/kaggle"))
  monkeypatch.setattr(blockio, "BLOCK_BYTES", 97)
  pd.testing.assert_frame_equal(netflix.read_netflix(_fx("netflix/kaggle")), full)
  pd.testing.assert_frame_equal(netflix.read_netflix(_fx("netflix/training_set")), full)


def test_netflix_crlf_and_missing_final_newline(tmp_path):
  p = tmp_path / "combined_data_1.txt"
  p.write_bytes(b"1:\r\n10,4,2005-01-01\r\n11,2,2005-01-02\r\n2:\r\n10,5,2005-01-03")
  df = netflix.read_netflix(str(p))
  assert _tuples(df) == [(10, 1, 4.0), (11, 1, 2.0), (10, 2, 5.0)]


def test_delimited_tab_header():
  path = _fx("delimited/interactions.tsv")
  df = generic.read_delimited(path, delimiter="tab", header=True)
  _check_frame(df)
  assert df["rating"].isna().all()
  assert _tuples(df, rating=False) == [t[:2] for t in _naive(path, "\t", skip=1)]
  with_rating = generic.read_delimited(path, delimiter="tab", header=True, rating_col=2)
  assert _tuples(with_rating) == _naive(path, "\t", skip=1)


@pytest.mark.parametrize("delimiter,sep", [("whitespace", "  \t "), ("space", " "), (";", ";"),
                                           ("::", "::"), ("comma", ",")])
def test_delimited_variants(tmp_path, delimiter, sep):
  rows = [("b", 3, 1.5), ("a", 1, 4.0), ("b", 2, 5.0)]
  p = tmp_path / "x.txt"
  p.write_text("".join(f"x{sep}{i}{sep}{u}{sep}{r}\n" for u, i, r in rows))
  df = generic.read_delimited(str(p), delimiter=delimiter, user_col=2, item_col=1, rating_col=3,
                              id_type="str")
  assert list(df["user"].cat.categories) == ["a", "b"]
  assert _tuples(df) == [(u, str(i), r) for u, i, r in rows]


def test_adjacency():
  path = _fx("adjacency/train.txt")
  df = generic.read_adjacency(path)
  _check_frame(df)
  expected = []
  with open(path) as f:
    for line in f:
      t = [int(x) for x in line.split()]
      expected += [(t[0], x) for x in t[1:]]
  assert _tuples(df, rating=False) == expected
  assert df["rating"].isna().all()
  s = generic.read_adjacency(path, id_type="str")
  assert _tuples(s, rating=False) == [(str(u), str(i)) for u, i in expected]


def test_adjacency_user_without_items(tmp_path):
  p = tmp_path / "a.txt"
  p.write_text("5 1 2\n6\n\n7 3\n")
  assert _tuples(generic.read_adjacency(str(p)), rating=False) == [(5, 1), (5, 2), (7, 3)]


def test_id_type_str_on_int_format():
  df = movielens.read_ml100k(_fx("ml100k/u.data"), id_type="str")
  cats = list(df["user"].cat.categories)
  assert cats == sorted(str(x) for x in set(movielens.read_ml100k(_fx("ml100k/u.data"))["user"]))
  assert cats != sorted(cats, key=int)  # '10' < '2' as strings.


@pytest.mark.parametrize("name", ["ml20m", "netflix", "msd", "ml1m", "custom", "default"])
def test_read_raw_smoke_configs(name):
  import importlib  # pylint: disable=g-import-not-at-top
  cfg = importlib.import_module(f"configs.{name}").get_config("smoke")
  df = formats.read_raw(cfg.data)
  _check_frame(df)
  assert len(df) > 200


def test_synthetic_with_str_ids():
  cfg = ml_collections.ConfigDict({"format": "synthetic", "id_type": "str",
                                   "synthetic": {"n_users": 50, "n_items": 30, "seed": 1,
                                                 "mean_items_per_user": 5.0}})
  df = formats.read_raw(cfg)
  assert isinstance(df["user"].dtype, pd.CategoricalDtype)


def test_format_registry():
  assert set(formats.REGISTRY) == {"ml20m", "netflix", "msd", "ml1m", "ml100k", "delimited",
                                   "adjacency", "synthetic"}
  for name, fmt in formats.REGISTRY.items():
    assert fmt.name == name and fmt.source.title and fmt.source.download
  with pytest.raises(DataError, match="Unknown data format 'parquet'.*use one of .*ml20m"):
    formats.get("parquet")


# ---- Bad input. ----------------------------------------------------------------------------------


def _copy_with(tmp_path, src: str, name: str, line_no: int, new_line: str | None) -> str:
  """A copy of fixture `src` with line `line_no` (1-based) replaced (None: deleted)."""
  with open(_fx(src)) as f:
    lines = f.read().split("\n")
  if new_line is None:
    del lines[line_no - 1]
  else:
    lines[line_no - 1] = new_line
  p = tmp_path / name
  p.write_text("\n".join(lines))
  return str(p)


@pytest.mark.parametrize("fmt,src,name,line,bad,why", [
    ("ml20m", "ml20m/ratings.csv", "ratings.csv", 7, "3,188,3.5,1193647100,9", "expected 4"),
    ("ml20m", "ml20m/ratings.csv", "ratings.csv", 9, "3,188,3.5", "expected 4"),
    ("ml20m", "ml20m/ratings.csv", "ratings.csv", 12, "3,abc,3.5,1193647100", "integer"),
    ("ml20m", "ml20m/ratings.csv", "ratings.csv", 30, "3,52,,1193647100", "number"),
    ("ml20m", "ml20m/ratings.csv", "ratings.csv", 1, "user,movie,rating,timestamp", "header"),
    ("ml1m", "ml1m/ratings.dat", "ratings.dat", 5, "1::305::5", "expected 4"),
    ("ml1m", "ml1m/ratings.dat", "ratings.dat", 6, "1::x::5::978379145", "integer"),
    ("ml1m", "ml1m/ratings.dat", "ratings.dat", 8, "1:305::5::978379145", "expected 4"),
    ("ml100k", "ml100k/u.data", "u.data", 3, "38\t33\tfour\t875313840", "number"),
    ("msd", "msd/train_triplets.txt", "train_triplets.txt", 4, "abc\tSOX", "expected 3"),
    ("msd", "msd/train_triplets.txt", "train_triplets.txt", 10, "abc\tSOX\t1\t2", "expected 3"),
    ("msd", "msd/train_triplets.txt", "train_triplets.txt", 11, "abc\tSOX\tmany", "integer"),
    ("msd", "msd/train_triplets.txt", "train_triplets.txt", 13, "abc\t\t1", "non-empty"),
    ("adjacency", "adjacency/train.txt", "train.txt", 3, "2 11 x 37", "integer"),
])
def test_malformed_line(tmp_path, fmt, src, name, line, bad, why):
  path = _copy_with(tmp_path, src, name, line, bad)
  cfg = ml_collections.ConfigDict({"format": fmt, "raw_path": path, "id_type":
                                   "str" if fmt == "msd" else "int"})
  with pytest.raises(DataError) as e:
    formats.read_raw(cfg)
  msg = str(e.value)
  assert f"{path}:{line}:" in msg, msg
  assert why in msg, msg


def test_malformed_delimited(tmp_path):
  path = _copy_with(tmp_path, "delimited/interactions.tsv", "i.tsv", 20, "116\tabc\t2")
  with pytest.raises(DataError, match=rf"{path}:20: .*field 2 should be an integer"):
    generic.read_delimited(path, delimiter="tab", header=True)
  path = _copy_with(tmp_path, "delimited/interactions.tsv", "j.tsv", 25, "116")
  with pytest.raises(DataError, match=rf"{path}:25: .*at least 2"):
    generic.read_delimited(path, delimiter="tab", header=True)


@pytest.mark.parametrize("content,line,why", [
    ("1:\n10,4,2005-01-01\n11,x,2005-01-02\n", 3, "Rating"),
    ("1:\n10,4,2005-01-01\n11,2\n", 3, "expected 3 fields"),
    ("1:\n10,4,2005-01-01\n11,2,2005-01-02,7\n", 3, "expected 3 fields"),
    ("1:\n10,4,2005-01-01\n11,2,\n", 3, "Date is empty"),
    ("10,4,2005-01-01\n1:\n", 1, "before the first"),
    ("1:\n10,4,2005-01-01\nabc:\n10,4,2005-01-01\n", 3, "movie line"),
])
def test_malformed_netflix(tmp_path, content, line, why):
  p = tmp_path / "combined_data_1.txt"
  p.write_text(content)
  with pytest.raises(DataError) as e:
    netflix.read_netflix(str(p))
  assert f"{p}:{line}:" in str(e.value) and why in str(e.value), str(e.value)


def test_malformed_netflix_in_folder(tmp_path):
  shutil.copytree(_fx("netflix/training_set"), tmp_path / "training_set")
  p = tmp_path / "training_set" / "mv_0000007.txt"
  lines = p.read_text().split("\n")
  lines[4] = "12,5"
  p.write_text("\n".join(lines))
  with pytest.raises(DataError) as e:
    netflix.read_netflix(str(tmp_path))
  assert f"{p}:5:" in str(e.value)
  (tmp_path / "training_set" / "mv_0000008.txt").write_text("12,5,2005-01-01\n")
  with pytest.raises(DataError, match="mv_0000008.txt:1: .*MOVIEID"):
    netflix.read_netflix(str(tmp_path))


@pytest.mark.parametrize("fmt,url", [
    ("ml20m", "https://grouplens.org/datasets/movielens/20m/"),
    ("netflix", "netflix-prize-data"),
    ("msd", "http://millionsongdataset.com/tasteprofile/"),
    ("ml1m", "grouplens.org"),
    ("ml100k", "grouplens.org"),
    ("delimited", "your own data"),
])
def test_missing_file(tmp_path, fmt, url):
  missing = tmp_path / "nowhere" / "file.txt"
  cfg = ml_collections.ConfigDict({"format": fmt, "raw_path": str(missing), "id_type": "int"})
  with pytest.raises(DataError) as e:
    formats.read_raw(cfg)
  msg = str(e.value)
  assert str(missing) in msg and "--config.data.raw_path" in msg and url in msg, msg


def test_missing_file_relative_path_and_folder(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  cfg = ml_collections.ConfigDict({"format": "ml20m", "raw_path": "data/ml-20m/ratings.csv",
                                   "id_type": "int"})
  with pytest.raises(DataError) as e:
    formats.read_raw(cfg)
  assert os.path.join(str(tmp_path), "data/ml-20m/ratings.csv") in str(e.value)
  # A folder: the format's usual file name inside it.
  (tmp_path / "ml").mkdir()
  cfg.raw_path = str(tmp_path / "ml")
  with pytest.raises(DataError, match=str(tmp_path / "ml" / "ratings.csv")):
    formats.read_raw(cfg)
  shutil.copy(_fx("ml20m/ratings.csv"), tmp_path / "ml" / "ratings.csv")
  assert len(formats.read_raw(cfg)) > 100
  # Netflix: a folder without mv_*.txt or combined_data_*.txt.
  cfg = ml_collections.ConfigDict({"format": "netflix", "raw_path": str(tmp_path / "ml"),
                                   "id_type": "int"})
  with pytest.raises(DataError, match="mv_\\*.txt or .*combined_data_\\*.txt"):
    formats.read_raw(cfg)
  cfg.raw_path = ""
  with pytest.raises(DataError, match="raw_path is empty"):
    formats.read_raw(cfg)


def test_unknown_format_and_id_type():
  cfg = base.get_base_config().data
  cfg.format = "parquet"
  cfg.raw_path = _fx("ml20m/ratings.csv")
  with pytest.raises(DataError, match="Unknown data format"):
    formats.read_raw(cfg)
  cfg.format = "ml20m"
  cfg.id_type = "float"
  with pytest.raises(DataError, match="id_type"):
    formats.read_raw(cfg)
