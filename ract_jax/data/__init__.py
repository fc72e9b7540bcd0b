"""Data pipeline: raw files -> the Liang et al. (2018) protocol -> the processed directory.

  formats.read_raw(config.data) -> DataFrame       (formats/: a registry, one module per family)
  run_protocol(df, ProtocolParams) -> LiangSplit   (protocol.py; the authors' split, row for row)
  prepare_dataset(config.data) -> path             (store.py; cached, written atomically)
  load_processed(path) / load_dataset(config.data) -> ProcessedData   (processed.py / store.py)
  describe(ProcessedData) -> str                   (dataset statistics)
  python -m ract_jax.data.prepare --config=configs/<name>.py   (command line)

Modules, each importing only from those before it: errors, csr, textio, blockio, atomic_dir,
formats, protocol, processed, store, prepare. Host-side only (numpy / pandas); nothing here imports
JAX (device-side batches are `ract_jax.device.batches`).
"""

from ract_jax.data import formats
from ract_jax.data.csr import CSR, HeldOut, ProcessedData
from ract_jax.data.errors import DamagedFileError, DataError
from ract_jax.data.formats import read_raw
from ract_jax.data.formats.generic import read_adjacency, read_delimited
from ract_jax.data.formats.movielens import read_ml1m, read_ml20m, read_ml100k
from ract_jax.data.formats.msd import read_msd
from ract_jax.data.formats.netflix import read_netflix
from ract_jax.data.formats.synthetic import SyntheticSpec, generate as generate_synthetic, write_raw
from ract_jax.data.processed import content_hash, describe, load_processed, write_processed
from ract_jax.data.protocol import LiangSplit, Pairs, ProtocolParams, run_protocol
from ract_jax.data.store import cache_key, load_dataset, prepare_dataset, processed_dir_for

__all__ = [
    "content_hash",
    "CSR", "HeldOut", "ProcessedData", "LiangSplit", "Pairs", "ProtocolParams", "run_protocol",
    "DataError", "DamagedFileError", "formats", "read_adjacency", "read_delimited", "read_ml1m",
    "read_ml20m", "read_ml100k", "read_msd", "read_netflix", "read_raw", "cache_key", "describe",
    "load_dataset", "load_processed", "prepare_dataset", "processed_dir_for", "write_processed",
    "SyntheticSpec", "generate_synthetic", "write_raw",
]
