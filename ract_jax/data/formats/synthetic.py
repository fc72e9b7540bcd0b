"""Synthetic data (`format='synthetic'`): a deterministic generator with learnable structure.

Model (all deterministic given `seed`):
  - item popularity: Zipf-like, `pop_i ∝ rank_i ** -popularity_exponent` over a random permutation
    of the items (so item ids carry no popularity information);
  - user activity: log-normal, `n_u = round(exp(N(mu, activity_sigma)))` with `mu` chosen so that
    the mean is `mean_items_per_user` (clipped to [1, n_items // 2]);
  - taste: user and item factors `a_u, b_i ~ N(0, I_rank)`, affinity `s_ui = <a_u, b_i> / sqrt(rank)`
    (unit variance);
  - a user's items: `n_u` items sampled without replacement with probability ∝
    `pop_i * exp(taste_strength * s_ui)`, by the Gumbel top-k trick: the `n_u` largest
    `log pop_i + taste_strength * s_ui + Gumbel` over all items (exact; used up to 32,768 items
    and 1e9 user x item scores, i.e. up to ~30k users x 30k items). Beyond (ML-20M size: 3.7e9
    scores; MSD size: 4e11) it is approximated by sampling-importance-resampling: draw `oversample * n_u`
    candidates from the popularity distribution (alias method), drop duplicates, keep the `n_u`
    largest `taste_strength * s_ui + Gumbel`;
  - a rating per interaction in MovieLens' half-star scale, higher for higher affinity (~half of
    them > 3.5), and a play count for MSD-style files.

Users are generated in fixed blocks of 4096 with their own seeds, so the output does not depend on
how the caller chunks it, and an MSD-sized file (1M users, 48M triplets) streams to disk in ~1 GB.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator

import numpy as np
import pandas as pd

from ract_jax.data import blockio, textio
from ract_jax.data.formats.spec import Format, Source, no_files

_BLOCK = 4096  # Users per generation block (part of the definition of the output; keep fixed).
# Exact sampling (scores for all users x items) up to this many items and this many scores in all.
_EXACT_MAX_ITEMS = 32_768
_EXACT_MAX_SCORES = 1_000_000_000


def _exact(spec) -> bool:
  return spec.n_items <= _EXACT_MAX_ITEMS and spec.n_users * spec.n_items <= _EXACT_MAX_SCORES


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
  """The `config.data.synthetic` keys (see ract_jax/config_base.py)."""

  n_users: int = 3000
  n_items: int = 1000
  mean_items_per_user: float = 40.0
  activity_sigma: float = 0.8
  popularity_exponent: float = 1.0
  rank: int = 16
  taste_strength: float = 2.0
  seed: int = 0
  oversample: float = 4.0  # Candidates per kept item (not a config key; generation detail).

  @classmethod
  def from_config(cls, cfg) -> "SyntheticSpec":
    if isinstance(cfg, SyntheticSpec):
      return cfg
    get = cfg.get if hasattr(cfg, "get") else lambda k, d=None: getattr(cfg, k, d)
    kw = {f.name: get(f.name, f.default) for f in dataclasses.fields(cls)}
    return cls(**kw)


@dataclasses.dataclass(frozen=True)
class _Items:
  pop: np.ndarray  # float64 [n_items], sums to 1
  alias_prob: np.ndarray
  alias: np.ndarray
  factors: np.ndarray  # float32 [n_items, rank]


def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Vose's alias table for O(1) sampling from `p` (sums to 1)."""
  n = len(p)
  prob = p * n
  alias = np.arange(n, dtype=np.int64)
  small = np.flatnonzero(prob < 1.0).tolist()
  large = np.flatnonzero(prob >= 1.0).tolist()
  prob = prob.tolist()
  while small and large:
    s, l = small.pop(), large.pop()
    alias[s] = l
    prob[l] -= 1.0 - prob[s]
    (small if prob[l] < 1.0 else large).append(l)
  out = np.asarray(prob)
  out[large] = 1.0
  out[small] = 1.0
  return out, alias


def _items(spec: SyntheticSpec) -> _Items:
  g = np.random.default_rng(np.random.SeedSequence([spec.seed, 0]))
  ranks = g.permutation(spec.n_items) + 1.0
  w = ranks ** -float(spec.popularity_exponent)
  pop = w / w.sum()
  factors = g.standard_normal((spec.n_items, spec.rank), dtype=np.float32)
  if _exact(spec):
    prob, alias = np.ones(0), np.zeros(0, np.int64)  # Unused by exact sampling.
  else:
    prob, alias = _alias_table(pop)
  return _Items(pop, prob, alias, factors)


def _exponential(g: np.random.Generator, shape) -> np.ndarray:
  """Exp(1) draws in float32 (-log of one is a Gumbel draw), kept away from 0."""
  e = g.standard_exponential(size=shape, dtype=np.float32)
  return np.maximum(e, np.float32(1e-30), out=e)


def _top_n_per_row(key: np.ndarray, n_u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(row, column) of the n_u[r] largest entries of each row of `key`, rows ascending."""
  k = int(n_u.max())
  top = np.argpartition(-key, k - 1, axis=1)[:, :k] if k < key.shape[1] else np.broadcast_to(
      np.arange(key.shape[1]), key.shape)
  vals = np.take_along_axis(key, top, axis=1)
  top = np.take_along_axis(top, np.argsort(-vals, axis=1, kind="stable"), axis=1)
  keep = np.arange(top.shape[1])[None, :] < n_u[:, None]
  rows = np.broadcast_to(np.arange(key.shape[0])[:, None], top.shape)
  return rows[keep].astype(np.int64), top[keep].astype(np.int64)


def _block(spec: SyntheticSpec, items: _Items, b: int) -> tuple[np.ndarray, ...]:
  """Users [b*4096, ...) of the dataset: (user, item, affinity, uniform) arrays, grouped by user."""
  u0 = b * _BLOCK
  n = min(_BLOCK, spec.n_users - u0)
  g = np.random.default_rng(np.random.SeedSequence([spec.seed, 1, b]))
  sigma = float(spec.activity_sigma)
  mu = np.log(spec.mean_items_per_user) - 0.5 * sigma ** 2
  n_u = np.clip(np.rint(np.exp(g.normal(mu, sigma, n))), 1, max(1, spec.n_items // 2))
  n_u = n_u.astype(np.int64)
  a = g.standard_normal((n, spec.rank), dtype=np.float32)
  scale = np.float32(1.0 / np.sqrt(spec.rank))
  if _exact(spec):
    # Exact: Gumbel top-k over all items of log pop + taste_strength * affinity.
    log_pop = np.log(items.pop).astype(np.float32)
    step = max(1, (1 << 24) // spec.n_items)  # ~16M scores at a time.
    owners, cands = [], []
    for s0 in range(0, n, step):
      key = (a[s0:s0 + step] @ items.factors.T) * np.float32(spec.taste_strength * scale)
      key += log_pop
      key -= np.log(_exponential(g, key.shape))  # + Gumbel.
      r, c = _top_n_per_row(key, n_u[s0:s0 + step])
      owners.append(r + s0)
      cands.append(c)
    owner, cand = np.concatenate(owners), np.concatenate(cands)
    s = np.einsum("kr,kr->k", a[owner], items.factors[cand]) * scale
  else:
    # Sampling-importance-resampling: candidates from popularity (alias method), deduplicated,
    # then the n_u largest taste_strength * affinity + Gumbel.
    n_cand = np.ceil(spec.oversample * n_u).astype(np.int64) + 2
    owner = np.repeat(np.arange(n, dtype=np.int64), n_cand)
    j = g.integers(0, spec.n_items, owner.shape[0])
    cand = np.where(g.random(owner.shape[0]) < items.alias_prob[j], j, items.alias[j])
    key = np.sort(owner * spec.n_items + cand)
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]  # Drop duplicate (user, item) pairs.
    owner, cand = key // spec.n_items, key % spec.n_items
    del key
    s = np.einsum("kr,kr->k", a[owner], items.factors[cand]) * scale
    score = spec.taste_strength * s - np.log(_exponential(g, s.shape[0]))
    # Per user (owner ascending), descending score: one argsort of a composite float64 key.
    order = np.argsort(owner * 256.0 - np.clip(score, -100.0, 100.0).astype(np.float64))
    owner, cand, s = owner[order], cand[order], s[order]
    starts = np.searchsorted(owner, np.arange(n))
    rank_in_user = np.arange(owner.shape[0]) - starts[owner]
    keep = rank_in_user < n_u[owner]
    owner, cand, s = owner[keep], cand[keep], s[keep]
  # Raw files list a user's items in time order, unrelated to affinity: shuffle within user.
  order = np.lexsort((g.random(owner.shape[0]), owner))
  return u0 + owner[order], cand[order], s[order], g.random(owner.shape[0])


def iter_blocks(cfg) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
  """Yields the dataset block by block: (user, item, affinity, uniform noise), grouped by user.

  Args:
    cfg: `config.data.synthetic` (or a SyntheticSpec).

  Yields:
    int64 user `[k]` (0-based), int64 item `[k]` (0-based), float32 affinity `[k]`, float64
    uniform `[k]` (extra per-row randomness for ratings / counts).
  """
  spec = SyntheticSpec.from_config(cfg)
  if spec.n_users < 1 or spec.n_items < 2 or spec.rank < 1 or spec.mean_items_per_user <= 0:
    raise ValueError(f"bad synthetic spec {spec}")
  items = _items(spec)
  for b in range((spec.n_users + _BLOCK - 1) // _BLOCK):
    yield _block(spec, items, b)


def _ratings(s: np.ndarray, noise_u: np.ndarray) -> np.ndarray:
  """Half-star ratings in [0.5, 5], increasing with affinity `s`; ~half above 3.5 (like ML-20M)."""
  from scipy.special import ndtri  # pylint: disable=g-import-not-at-top
  z = ndtri(np.clip(noise_u, 1e-9, 1 - 1e-9))
  centred = s - (s.mean() if s.size else 0.0)  # Chosen items' affinity is > 0 on average.
  r = np.rint(2.0 * (3.7 + 0.5 * centred + 0.8 * z)) / 2.0
  return np.clip(r, 0.5, 5.0)


def generate(cfg) -> pd.DataFrame:
  """The synthetic dataset as a reader DataFrame.

  Args:
    cfg: `config.data.synthetic`.

  Returns:
    DataFrame with columns user (int64, 0-based), item (int64, 0-based), rating (float64,
    half-stars), grouped by user in ascending id (like ML-20M's ratings.csv).
  """
  us, its, rs = [], [], []
  for user, item, s, noise in iter_blocks(cfg):
    us.append(user)
    its.append(item)
    rs.append(_ratings(s, noise))
  return pd.DataFrame({"user": np.concatenate(us), "item": np.concatenate(its),
                       "rating": np.concatenate(rs).astype(np.float64)})


def _hex_ids(g: np.random.Generator, n: int, n_bytes: int) -> np.ndarray:
  """n distinct random lowercase hex ids of 2*n_bytes characters, as 'S' bytes."""
  digits = np.frombuffer(b"0123456789abcdef", np.uint8)
  while True:
    raw = g.integers(0, 256, (n, n_bytes), dtype=np.uint8)
    chars = np.empty((n, 2 * n_bytes), np.uint8)
    chars[:, 0::2] = digits[raw >> 4]
    chars[:, 1::2] = digits[raw & 15]
    out = chars.view(f"S{2 * n_bytes}").ravel()
    if len(set(out.tolist())) == n:
      return out


def _song_ids(g: np.random.Generator, n: int) -> np.ndarray:
  """n distinct MSD-like song ids 'SO' + 16 upper-case alphanumerics, as 'S18'."""
  alphabet = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", np.uint8)
  while True:
    chars = np.empty((n, 18), np.uint8)
    chars[:, 0], chars[:, 1] = ord("S"), ord("O")
    chars[:, 2:] = alphabet[g.integers(0, len(alphabet), (n, 16))]
    out = chars.view("S18").ravel()
    if len(set(out.tolist())) == n:
      return out


def write_raw(path: str, cfg, fmt: str = "ml20m") -> dict:
  """Writes the synthetic dataset as a raw file in a real dataset's format (for benchmarks).

  Args:
    path: output file.
    cfg: `config.data.synthetic` (or a SyntheticSpec).
    fmt: 'ml20m' (`ratings.csv`: header, `userId,movieId,rating,timestamp`, users ascending),
      'msd' (`train_triplets.txt`: `user<TAB>song<TAB>count`, 40-hex user ids, 'SO...' song ids,
      users in random id order) or 'netflix' (one Kaggle `combined_data_*.txt`: `MOVIEID:` blocks
      of `CustomerID,Rating,Date`, integer stars; holds all rows in memory to group by movie).

  Returns:
    {'rows', 'users', 'items'} actually written (users / items with at least one row).
  """
  spec = SyntheticSpec.from_config(cfg)
  g = np.random.default_rng(np.random.SeedSequence([spec.seed, 2]))
  if fmt == "ml20m":
    # MovieLens-like sparse movie ids; a rating as 'd.d'.
    movie_ids = np.sort(g.choice(5 * spec.n_items, spec.n_items, replace=False)) + 1
    stars = np.asarray([f"{x / 2:.1f}".encode() for x in range(11)], dtype="S3")
    header, sep = b"userId,movieId,rating,timestamp\n", b","
  elif fmt == "msd":
    user_ids = _hex_ids(g, spec.n_users, 20)
    song_ids = _song_ids(g, spec.n_items)
    header, sep = b"", b"\t"
  elif fmt == "netflix":
    return _write_netflix(path, spec, g)
  else:
    raise ValueError(f"unknown raw format {fmt!r}; use 'ml20m', 'msd' or 'netflix'")
  rows = 0
  seen_u = np.zeros(spec.n_users, bool)
  seen_i = np.zeros(spec.n_items, bool)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "wb") as f:
    f.write(header)
    for user, item, s, noise in iter_blocks(spec):
      seen_u[user] = True
      seen_i[item] = True
      rows += len(user)
      if fmt == "ml20m":
        r = _ratings(s, noise)
        ts = 1_000_000_000 + (user * 7919 + item * 104_729) % 400_000_000
        cols = [user + 1, movie_ids[item], stars[(2 * r).astype(np.int64)], ts]
      else:
        # Play counts: geometric, a little higher for higher affinity.
        p = np.clip(0.45 - 0.1 * s, 0.1, 0.9)
        count = np.ceil(np.log1p(-noise) / np.log1p(-p)).astype(np.int64)
        cols = [user_ids[user], song_ids[item], np.maximum(count, 1)]
      for piece in blockio.format_lines(cols, sep=sep):
        f.write(piece)
  return {"rows": int(rows), "users": int(seen_u.sum()), "items": int(seen_i.sum())}


def _write_netflix(path: str, spec: SyntheticSpec, g: np.random.Generator) -> dict:
  customers = np.sort(g.choice(2_649_429, spec.n_users, replace=False)) + 1
  days = np.arange(np.datetime64("1999-11-11"), np.datetime64("2005-12-31"))
  dates = np.asarray([str(d).encode() for d in days], dtype="S10")
  us, its, rs = [], [], []
  for user, item, s, noise in iter_blocks(spec):
    us.append(user.astype(np.int32))
    its.append(item.astype(np.int32))
    rs.append(np.ceil(_ratings(s, noise)).astype(np.int8))  # 1..5 stars.
  user, item, stars = np.concatenate(us), np.concatenate(its), np.concatenate(rs)
  del us, its, rs
  order = np.argsort(item, kind="stable")
  user, item, stars = user[order], item[order], stars[order]
  del order
  bounds = np.searchsorted(item, np.arange(spec.n_items + 1))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "wb") as f:
    for m in range(spec.n_items):
      a, b = bounds[m], bounds[m + 1]
      if a == b:
        continue
      f.write(b"%d:\n" % (m + 1))
      u = user[a:b].astype(np.int64)
      day = dates[(u * 7919 + m * 104_729) % len(dates)]
      for piece in blockio.format_lines([customers[u], stars[a:b].astype(np.int64), day]):
        f.write(piece)
  return {"rows": int(len(user)), "users": int(np.count_nonzero(np.bincount(user))),
          "items": int(np.count_nonzero(np.diff(bounds)))}


def _read(files, data_config) -> pd.DataFrame:
  del files  # Generated, not read.
  df = generate(data_config.synthetic)
  return textio.frame(df["user"], df["item"], df["rating"], id_type=textio.id_type_of(data_config))


FORMATS = (
    Format("synthetic", _read,
           Source("synthetic data", None, "generated from config.data.synthetic"),
           cache_keys=("synthetic",), resolve=no_files),
)
