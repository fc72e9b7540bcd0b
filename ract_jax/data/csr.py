"""Host-side containers for a processed dataset: binary user x item matrices in CSR form.

These are the plain numpy arrays that the processed directory stores (`arrays.npz`) and that the
training code copies to the device once. Nothing here depends on JAX.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class CSR:
  """A binary sparse matrix `[n_rows, n_items]` in compressed-sparse-row form.

  Attributes:
    indptr: int64 `[n_rows + 1]`; row r's items are `indices[indptr[r]:indptr[r+1]]`.
    indices: int32 `[nnz]`; item indices (0-based, `< n_items`), in the order of the Liang CSV rows.
    n_items: number of columns.
  """

  indptr: np.ndarray
  indices: np.ndarray
  n_items: int

  @property
  def n_rows(self) -> int:
    return int(self.indptr.shape[0] - 1)

  @property
  def nnz(self) -> int:
    return int(self.indices.shape[0])

  def row_lengths(self) -> np.ndarray:
    """Number of items per row, int64 `[n_rows]`."""
    return np.diff(self.indptr)

  def row(self, r: int) -> np.ndarray:
    return self.indices[self.indptr[r]:self.indptr[r + 1]]

  def to_dense(self, dtype=np.float32) -> np.ndarray:
    """Dense `[n_rows, n_items]` 0/1 matrix (small data and tests only)."""
    out = np.zeros((self.n_rows, self.n_items), dtype)
    rows = np.repeat(np.arange(self.n_rows), self.row_lengths())
    out[rows, self.indices] = 1
    return out

  def to_scipy(self):
    import scipy.sparse as sp
    data = np.ones(self.nnz, np.float32)
    return sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n_rows, self.n_items))

  @staticmethod
  def from_pairs(rows: np.ndarray, items: np.ndarray, n_rows: int, n_items: int) -> "CSR":
    """Builds a CSR from (row, item) pairs; within a row the pairs keep their given order."""
    rows = np.asarray(rows, np.int64)
    order = np.argsort(rows, kind="stable")
    counts = np.bincount(rows, minlength=n_rows)
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return CSR(indptr=indptr, indices=np.asarray(items, np.int32)[order], n_items=int(n_items))


@dataclasses.dataclass(frozen=True)
class HeldOut:
  """Held-out (validation or test) users under strong generalisation.

  Rows are the users that appear in the fold-in or held-out CSV, in ascending Liang uid order;
  `fold_in` and `held_out` are row-aligned.

  Attributes:
    uids: int64 `[n_rows]` Liang uids (as written in `validation_tr.csv` etc.).
    fold_in: the 80% the model sees (`*_tr.csv`).
    held_out: the 20% to rank (`*_te.csv`); empty rows for users with fewer than 5 items.
  """

  uids: np.ndarray
  fold_in: CSR
  held_out: CSR

  @property
  def n_users(self) -> int:
    return int(self.uids.shape[0])


@dataclasses.dataclass(frozen=True)
class ProcessedData:
  """Everything the training and evaluation code needs from a processed directory.

  Attributes:
    train: training users' full histories, rows = Liang uids `0 .. n_train-1`.
    validation: held-out validation users.
    test: held-out test users.
    unique_sid: raw item ids (strings), position = item index (the content of `unique_sid.txt`).
    meta: the content of `meta.json` (counts, protocol parameters, input hashes).
    path: the processed directory this was loaded from ('' if built in memory).
    unique_uid: raw user ids (strings), position = Liang uid (the content of `unique_uid.txt`:
      training users, then validation, then test users); empty for the authors' directories and
      for processed directories of format version 1, which do not record them.
  """

  train: CSR
  validation: HeldOut
  test: HeldOut
  unique_sid: tuple
  meta: dict
  path: str = ""
  unique_uid: tuple = ()

  @property
  def n_items(self) -> int:
    return self.train.n_items
