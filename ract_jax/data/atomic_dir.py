"""Directories written atomically: a scratch directory beside the target, renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable


def write_atomically(path: str, fill: Callable[[str], None]) -> None:
  """Creates or replaces directory `path` with what `fill(scratch_dir)` writes, atomically.

  Everything goes into a scratch directory beside `path` (same parent, so the rename is atomic);
  on success an existing `path` is moved aside, the scratch directory renamed to `path` and the
  old one deleted. On any failure the scratch directory is removed and `path` is left as it was.
  The result has the permissions of a directory made with the process's umask.

  Args:
    path: the target directory.
    fill: writes the content into the directory it is given.
  """
  path = os.path.abspath(path)
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
  old = None
  try:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; the result is shared like any folder.
    fill(tmp)
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
