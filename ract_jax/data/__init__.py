"""Data pipeline: raw readers -> the Liang et al. (2018) protocol -> the processed directory.

  read_raw(config.data) -> DataFrame            (readers.py; one reader per raw format)
  run_protocol(df, ProtocolParams) -> LiangSplit  (protocol.py; the authors' split, row for row)
  prepare_dataset(config.data) -> path          (store.py; atomic, cached processed directory)
  load_processed(path) / load_dataset(config.data) -> ProcessedData
  describe(ProcessedData) -> str                (dataset statistics)
  python -m ract_jax.data.prepare --config=configs/<name>.py   (command line)

Nothing here imports JAX.
"""

from ract_jax.data.csr import CSR, HeldOut, ProcessedData
from ract_jax.data.protocol import LiangSplit, Pairs, ProtocolParams, run_protocol
from ract_jax.data.readers import (DataError, read_adjacency, read_delimited, read_ml1m,
                                   read_ml20m, read_ml100k, read_msd, read_netflix, read_raw)
from ract_jax.data.store import (cache_key, describe, load_dataset, load_processed,
                                 prepare_dataset, processed_dir_for, write_processed)
from ract_jax.data.synthetic import SyntheticSpec, generate as generate_synthetic, write_raw

__all__ = [
    "CSR", "HeldOut", "ProcessedData", "LiangSplit", "Pairs", "ProtocolParams", "run_protocol",
    "DataError", "read_adjacency", "read_delimited", "read_ml1m", "read_ml20m", "read_ml100k",
    "read_msd", "read_netflix", "read_raw", "cache_key", "describe", "load_dataset",
    "load_processed", "prepare_dataset", "processed_dir_for", "write_processed", "SyntheticSpec",
    "generate_synthetic", "write_raw",
]
