"""The trained model in portable form, `<workdir>/model/`: written by the trainer, read to serve.

  model/model.json      which model ('ract', or 'actor' when stages 2-3 did not run or have not
                        finished), the selected epoch, `config.actor`, n_items, the preprocessing a
                        raw history needs (data format, rating_threshold, id_type), the test
                        NDCG@100 and the evaluation cut-offs
  model/params.npz      the actor's parameters, float32, keys '/'-joined ('enc0/w', 'dec1/b', ...)
  model/vocabulary.txt  raw item ids in model order: line i is item index i (the processed
                        directory's `unique_sid.txt`)

The trainer writes it (atomically) at the hand-over after stage 1 (the best pre-trained actor)
and again at the end of the run (the final selected model), so a workdir copied to a machine
without the data cache serves recommendations (`ract_jax.recommend`), evaluates held-out users
(`ract_jax.evaluate_model`) and exports (`ract_jax.export`). Nothing here needs the training code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from typing import Sequence

import ml_collections
import numpy as np

from ract_jax import actors, config_base
from ract_jax.data import atomic_dir

FORMAT_VERSION = 1
MODEL_DIR = "model"
INFO_FILE, PARAMS_FILE, VOCABULARY_FILE = "model.json", "params.npz", "vocabulary.txt"
MODELS = {"ract": "RaCT (the actor after the actor-critic stages, selected by validation NDCG@100)",
          "actor": "the pre-trained actor (stage 1, selected by validation NDCG@100)",
          "ft": "the pre-trained actor fine-tuned on an L2R loss (Table 1's WARP / LambdaRank rows, "
                "selected by validation among the fine-tuning epochs)"}


class ModelError(ValueError):
  """A workdir without a usable model; the message names the file and what to do."""


# ---- Parameters as a flat dict. ------------------------------------------------------------------


def flatten(params: dict, prefix: str = "") -> dict[str, np.ndarray]:
  """`{'enc0': {'w': a}}` -> `{'enc0/w': a}` (host numpy arrays)."""
  out = {}
  for key, value in params.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(flatten(value, name + "/"))
    else:
      out[name] = np.asarray(value)
  return out


def unflatten(flat: dict[str, np.ndarray]) -> dict:
  """The inverse of `flatten`."""
  out: dict = {}
  for name, value in flat.items():
    node = out
    *path, leaf = name.split("/")
    for part in path:
      node = node.setdefault(part, {})
    node[leaf] = value
  return out


# ---- What model.json says. -----------------------------------------------------------------------


def model_info(name: str, selected: dict, actor_cfg: ml_collections.ConfigDict,
               data_cfg: ml_collections.ConfigDict, eval_cfg: ml_collections.ConfigDict,
               n_items: int, test: dict) -> dict:
  """The content of `model.json`.

  Args:
    name: 'ract' or 'actor'.
    selected: where the parameters come from, e.g. `{'global_epoch': 12, 'stage': 'ac',
      'epoch': 3, 'epochs': 10}` (1-based) or `{'pretrained_actor': path}`.
    actor_cfg, data_cfg, eval_cfg: `config.actor`, `config.data`, `config.eval`.
    n_items: M, the length of the vocabulary.
    test: the model's test summary (`evaluate.summarize`).
  """
  if name not in MODELS:
    raise ValueError(f"model name {name!r}: expected one of {tuple(MODELS)}.")
  thr = data_cfg.rating_threshold
  return {
      "format_version": FORMAT_VERSION,
      "model": name,
      "description": MODELS[name],
      "selected": dict(selected),
      "actor": actor_cfg.to_dict(),
      "n_items": int(n_items),
      "preprocessing": {
          "dataset": data_cfg.name, "format": data_cfg.format,
          "rating_threshold": None if thr is None else float(thr),
          "id_type": data_cfg.get("id_type", "int"),
          "note": "a history lists the items a user interacted with; rows with rating <= "
                  "rating_threshold are dropped (when there is a threshold and a rating), "
                  "repeated items count once, items not in vocabulary.txt are ignored"},
      "eval": {"ndcg_ks": list(eval_cfg.ndcg_ks), "recall_ks": list(eval_cfg.recall_ks)},
      "test": {k: test[k] for k in ("ndcg@100", "ndcg@100_se", "recall@20", "recall@50",
                                    "n_users") if k in test},
      "files": {"params": PARAMS_FILE, "vocabulary": VOCABULARY_FILE},
  }


# ---- Writing. ------------------------------------------------------------------------------------


def write(workdir: str, params: dict, info: dict, vocabulary: Sequence[str]) -> str:
  """Writes (or replaces) `<workdir>/model/` atomically; returns its path.

  Args:
    workdir: the run's workdir.
    params: the actor's parameters (nested dict of arrays; fetched to the host here).
    info: from `model_info`.
    vocabulary: raw item ids in model order (`ProcessedData.unique_sid`), `info['n_items']` long.
  """
  if len(vocabulary) != info["n_items"]:
    raise ValueError(f"vocabulary of {len(vocabulary)} items for a model of {info['n_items']}.")
  flat = {k: np.asarray(v, np.float32) for k, v in flatten(params).items()}

  def fill(tmp):
    np.savez(os.path.join(tmp, PARAMS_FILE), **flat)
    with open(os.path.join(tmp, VOCABULARY_FILE), "w", encoding="utf-8") as f:
      f.writelines(f"{item}\n" for item in vocabulary)
    with open(os.path.join(tmp, INFO_FILE), "w", encoding="utf-8") as f:
      json.dump(info, f, indent=2)
      f.write("\n")

  path = os.path.join(os.path.abspath(workdir), MODEL_DIR)
  atomic_dir.write_atomically(path, fill)
  return path


# ---- Reading. ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SavedModel:
  """A model read from `<workdir>/model/`.

  Attributes:
    params: the actor's parameters, nested dict of float32 numpy arrays.
    info: the content of model.json.
    vocabulary: raw item ids, position = item index.
    path: the model directory.
  """

  params: dict
  info: dict
  vocabulary: tuple
  path: str

  @property
  def name(self) -> str:
    """'ract' or 'actor'."""
    return self.info["model"]

  @property
  def n_items(self) -> int:
    return int(self.info["n_items"])

  @property
  def actor_config(self) -> ml_collections.ConfigDict:
    """The `config.actor` block the parameters were trained with (keys added since it was saved
    take their defaults, the behaviour before they existed)."""
    actor = config_base.get_base_config().actor
    actor.update(self.info["actor"])
    return actor

  @property
  def rating_threshold(self) -> float | None:
    return self.info["preprocessing"]["rating_threshold"]

  def describe(self) -> str:
    """One line: which model, from which epoch, its test NDCG@100."""
    sel = self.info.get("selected", {})
    where = (f"pre-trained actor from {sel['pretrained_actor']}" if "pretrained_actor" in sel
             else f"global epoch {sel.get('global_epoch')} ({sel.get('stage')} epoch "
                  f"{sel.get('epoch')}/{sel.get('epochs')})")
    test = self.info.get("test", {})
    ndcg = f", test NDCG@100 {test['ndcg@100']:.4f}" if "ndcg@100" in test else ""
    return (f"model '{self.name}': {self.info.get('description', '')}; {where}; "
            f"{self.info['actor'].get('kind')} ({self.info['actor'].get('shape')}), "
            f"{self.n_items:,} items{ndcg} [{self.path}]")

  def item_index(self, items: Sequence) -> np.ndarray:
    """Item indices of raw item ids, int64 `[len(items)]`, -1 for ids not in the vocabulary.

    Ids are compared as the processed data wrote them: for integer ids (`id_type` 'int') '007',
    '+7', ' 7' and 7 all name item '7'; string ids must match exactly (surrounding spaces aside).
    Vectorised (numpy; a sorted copy of the vocabulary, built once).
    """
    arr = items if isinstance(items, np.ndarray) else np.asarray(list(items))
    if arr.size == 0:
      return np.zeros(0, np.int64)
    keys, order = self._lookup()
    if self.info["preprocessing"]["id_type"] == "int":
      if arr.dtype.kind in "iu":
        values, ok = arr.astype(np.int64), np.ones(arr.shape, bool)
      else:
        text = np.char.strip(arr.astype(str))
        ok = np.char.isdigit(np.char.lstrip(text, "+-")) & (
            np.char.count(text, "+") + np.char.count(text, "-") <= 1)
        values = np.zeros(arr.shape, np.int64)
        try:
          values[ok] = text[ok].astype(np.int64)
        except (ValueError, OverflowError):  # Non-ASCII digits, huge numbers: one at a time.
          for i in np.flatnonzero(ok):
            try:
              values[i] = int(text[i])
            except (ValueError, OverflowError):
              ok[i] = False
    else:
      values, ok = np.char.strip(arr.astype(str)), np.ones(arr.shape, bool)
    pos = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return np.where(ok & (keys[pos] == values), order[pos], -1).astype(np.int64)

  def _lookup(self) -> tuple[np.ndarray, np.ndarray]:
    """(the vocabulary sorted, as int64 or str; the item index of each sorted entry), cached."""
    if "_lookup_cache" not in self.__dict__:  # A frozen dataclass: cached through __dict__.
      ids = np.asarray(self.vocabulary, dtype=str)
      if self.info["preprocessing"]["id_type"] == "int":
        ids = ids.astype(np.int64)
      order = np.argsort(ids, kind="stable")
      self.__dict__["_lookup_cache"] = (ids[order], order.astype(np.int64))
    return self.__dict__["_lookup_cache"]


def _no_model(workdir: str, path: str) -> ModelError:
  if os.path.isdir(os.path.join(workdir, "checkpoints")) or os.path.exists(
      os.path.join(workdir, "metrics.jsonl")):
    why = ("the run has not finished stage 1 yet (re-running its training command resumes it; "
           "model/ is written when stage 1 ends and when the run ends), or it finished under a "
           "version that did not write model/ (re-run its training command with "
           "--config.reevaluate=True)")
  else:
    why = "this is not the workdir of a training run (python -m ract_jax.main --workdir=...)"
  return ModelError(f"{workdir}: no finished model (no {path}): {why}.")


def _damaged(path: str, problem: str) -> ModelError:
  return ModelError(f"{path}: damaged model file ({problem}); copy the workdir's model/ folder "
                    "again, or re-run the training command to write it anew.")


def _read_info(path: str) -> dict:
  file = os.path.join(path, INFO_FILE)
  if not os.path.isfile(file):
    raise ModelError(f"{file}: missing; {path} is not a complete model folder (the trainer writes "
                     "it atomically; copy the whole model/ folder).")
  try:
    with open(file, encoding="utf-8") as f:
      info = json.load(f)
  except (OSError, ValueError) as e:
    raise _damaged(file, f"{type(e).__name__}: {e}") from None
  missing = [k for k in ("format_version", "model", "actor", "n_items", "preprocessing")
             if not isinstance(info, dict) or k not in info]
  if missing:
    raise _damaged(file, f"no {', '.join(missing)}")
  if info["format_version"] > FORMAT_VERSION:
    raise ModelError(f"{file}: model format {info['format_version']} is newer than this "
                     f"ract_jax reads ({FORMAT_VERSION}); update ract_jax.")
  return info


def _read_params(path: str, info: dict) -> dict:
  file = os.path.join(path, PARAMS_FILE)
  try:
    with np.load(file) as z:
      flat = {k: z[k] for k in z.files}
  except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
    raise _damaged(file, f"{type(e).__name__}: {e}") from None
  want = {}
  for name, fan_in, fan_out in actors.layer_dims(ml_collections.ConfigDict(info["actor"]),
                                                 info["n_items"]):
    want[f"{name}/w"], want[f"{name}/b"] = (fan_in, fan_out), (fan_out,)
  got = {k: tuple(v.shape) for k, v in flat.items()}
  if got != want:
    raise _damaged(file, f"parameters {got} do not fit the actor of {INFO_FILE} ({want})")
  return unflatten(flat)


def _read_vocabulary(path: str, n_items: int) -> tuple:
  file = os.path.join(path, VOCABULARY_FILE)
  try:
    with open(file, encoding="utf-8") as f:
      lines = f.read().split("\n")
  except (OSError, ValueError) as e:
    raise _damaged(file, f"{type(e).__name__}: {e}") from None
  if lines and lines[-1] == "":
    lines.pop()
  if len(lines) != n_items:
    raise _damaged(file, f"{len(lines)} lines for a model of {n_items} items")
  return tuple(lines)


def read(workdir: str) -> SavedModel:
  """Reads `<workdir>/model/` (or a model folder itself).

  Raises:
    ModelError: no such workdir, no finished model there, or a damaged file (the message names
      it and what to do).
  """
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if not os.path.isdir(workdir):
    raise ModelError(f"{workdir}: no such directory (the --workdir of a training run).")
  path = workdir if os.path.isfile(os.path.join(workdir, INFO_FILE)) else os.path.join(
      workdir, MODEL_DIR)
  if not os.path.isdir(path):
    raise _no_model(workdir, path)
  info = _read_info(path)
  return SavedModel(params=_read_params(path, info), info=info,
                    vocabulary=_read_vocabulary(path, info["n_items"]), path=path)
