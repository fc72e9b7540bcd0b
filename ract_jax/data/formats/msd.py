"""The Million Song Dataset taste profile: `train_triplets.txt`, `user<TAB>song<TAB>play count`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ract_jax.data import blockio, textio
from ract_jax.data.formats.spec import Format, Source, one_file


def read_msd(path: str, id_type: str = "str") -> pd.DataFrame:
  """Million Song Dataset `train_triplets.txt`: `user<TAB>song<TAB>play count`, no header.

  Fast path (the real file, `read_triplets_fast`): fixed-width ids (40-hex users, 18-character
  songs) and integer counts parsed byte-wise with numpy. Any line outside that shape sends the
  whole file to the general path (pandas, chunks of 4M rows), which also reports malformed lines.

  Args:
    path: the `train_triplets.txt` file.
    id_type: 'str' (default; user and song ids are hex / 'SO...' strings and sort as strings) or
      'int' (only for files whose ids are integers).

  Returns:
    DataFrame with columns user, item (sorted-category Categoricals for 'str'), rating = play count.
  """
  textio.check_id_type(id_type)
  if id_type == "str":
    df = read_triplets_fast(path)
    if df is not None:
      return df
  kind = "str" if id_type == "str" else "int"
  layout = textio.Layout("3 tab-separated fields: user id, song id, play count (integer)",
                         textio.split_on("\t"), 3, 3, {0: kind, 1: kind, 2: "int"})
  df = textio.read_table(path, path, layout, sep="\t", usecols=None,
                         names=["user", "item", "rating"],
                         dtypes={"user": textio.id_dtype(id_type), "item": textio.id_dtype(id_type),
                                 "rating": np.float64})
  return textio.frame(df["user"], df["item"], df["rating"])


def read_triplets_fast(path: str) -> pd.DataFrame | None:
  """`user<TAB>item<TAB>count` with fixed-width ids, parsed with numpy; None if not that shape.

  The file is read in ~64 MB blocks; ids are hashed to 64 bits and factorised per block
  (collisions are checked, not assumed away), so 48M triplets end as int32 codes plus the distinct
  ids and never become 96M Python strings.
  """
  users, items, counts = blockio.BytesIds(), blockio.BytesIds(), []
  try:
    for block in blockio.line_blocks([path]):
      arr = np.frombuffer(block, np.uint8)
      nl = np.flatnonzero(arr == 10)
      tabs = np.flatnonzero(arr == 9)
      n = len(nl)
      if len(tabs) != 2 * n:
        raise blockio.Fallback("field count")
      t1, t2 = tabs[0::2], tabs[1::2]
      starts = np.empty(n, np.int64)
      starts[0] = 0
      starts[1:] = nl[:-1] + 1
      # With sorted tabs, 2 per line on average, these inequalities put exactly 2 in each line.
      if not ((t1 > starts).all() and (t2 > t1 + 1).all() and (nl > t2 + 1).all()):
        raise blockio.Fallback("empty field or tab misplaced")
      wu, wi, wc = t1 - starts, t2 - t1 - 1, nl - t2 - 1
      if (wu != wu[0]).any() or (wi != wi[0]).any() or wc.max() > 15:
        raise blockio.Fallback("variable-width ids")
      # Row gathers through strided windows (an [n, w] index array would cost 8x the bytes).
      win = np.lib.stride_tricks.sliding_window_view
      users.add(win(arr, int(wu[0]))[starts])
      items.add(win(arr, int(wi[0]))[t1 + 1])
      mw = int(wc.max())
      padded = np.concatenate([arr, np.full(mw, 48, np.uint8)])
      digits = win(padded, mw)[t2 + 1] - np.uint8(48)
      valid = np.arange(mw)[None, :] < wc[:, None]
      if ((digits > 9) & valid).any():
        raise blockio.Fallback("non-integer count")
      value = np.zeros(n, np.int64)
      for j in range(mw):
        value = np.where(valid[:, j], value * 10 + digits[:, j], value)
      counts.append(value.astype(np.float64))
    if not counts:
      return None
    return textio.frame(users.categorical(), items.categorical(), np.concatenate(counts))
  except blockio.Fallback:
    return None


FORMATS = (
    Format("msd", one_file(read_msd),
           Source("Million Song Dataset taste profile", "train_triplets.txt",
                  "http://millionsongdataset.com/tasteprofile/ (train_triplets.txt, unzipped)"),
           default_file="train_triplets.txt"),
)
