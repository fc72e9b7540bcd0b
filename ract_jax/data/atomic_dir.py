"""Directories written atomically, and the scratch directories that killed writers leave behind.

`write_atomically(path, fill)` fills a scratch directory `.<name>.tmp-<host>-<pid>-<random>` beside
`path` (same parent, same filesystem) while holding its flock, then renames it into place. A writer
killed meanwhile leaves the scratch directory; `remove_stale_scratch` removes it on a later call,
but never one that a live writer holds.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import tempfile
import time
from typing import Callable

STALE_AFTER_S = 24 * 3600  # A scratch directory untouched this long is abandoned, whoever made it.

Log = Callable[[str], None]


def _host() -> str:
  return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def _scratch_prefix(path: str, kind: str) -> str:
  """`.<name>.<kind>-<host>-<pid>-` : whose scratch directory this is (see remove_stale_scratch)."""
  return f".{os.path.basename(path)}.{kind}-{_host()}-{os.getpid()}-"


def _lock(fd: int) -> None:
  """Takes the flock that marks a scratch directory as being written (blocking: a cleaner's probe
  holds it for an instant). Where flock is unsupported (some network filesystems), nothing."""
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
  except OSError:
    pass


def write_atomically(path: str, fill: Callable[[str], None]) -> None:
  """Creates or replaces directory `path` with what `fill(scratch_dir)` writes, atomically.

  Everything goes into a scratch directory beside `path` (same parent, so the rename is atomic),
  locked (flock) while it is written; on success an existing `path` is moved aside, the scratch
  directory renamed to `path` and the old one deleted. On any failure the scratch directory is
  removed and `path` is left as it was. The result has the permissions of a directory made with
  the process's umask.

  Args:
    path: the target directory.
    fill: writes the content into the directory it is given.
  """
  path = os.path.abspath(path)
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=_scratch_prefix(path, "tmp"), dir=parent)
  lock = os.open(tmp, os.O_RDONLY)
  old = None
  try:
    _lock(lock)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; the result is shared like any folder.
    fill(tmp)
    if os.path.lexists(path):
      old = tempfile.mkdtemp(prefix=_scratch_prefix(path, "old"), dir=parent)
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
  finally:
    os.close(lock)
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)


# ---- Scratch directories left by killed writers. -------------------------------------------------

# `.<name>.tmp-<host>-<pid>-<8 chars>` (and `.old-`); `.<name>.tmp-<8 chars>` from format version 1.
_SCRATCH_RE = re.compile(
    r"^\.(?P<name>.+)\.(?:tmp|old)-(?:(?P<host>.+)-(?P<pid>\d+)-)?[a-z0-9_]{8}$")


def _locked(path: str) -> bool:
  """Whether a live process holds the flock of directory `path` (or it vanished meanwhile)."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return True
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return False
  except BlockingIOError:
    return True
  except OSError:  # flock unsupported here: the pid and age rules decide.
    return False
  finally:
    os.close(fd)


def _pid_gone(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except OSError:  # EPERM: it exists, under another user.
    return False
  return False


def _newest_mtime(path: str) -> float:
  times = [os.lstat(path).st_mtime]
  with os.scandir(path) as it:
    times += [e.stat(follow_symlinks=False).st_mtime for e in it]
  return max(times)


def _stale_reason(path: str, host: str | None, pid: str | None) -> str | None:
  if _locked(path):  # A live writer holds it, in whatever process namespace.
    return None
  if pid is not None and host == _host() and _pid_gone(int(pid)):
    return f"left by process {pid} on this host, which has ended"
  age = time.time() - _newest_mtime(path)
  return f"untouched for {age / 3600:.0f} hours" if age > STALE_AFTER_S else None


def remove_stale_scratch(parent: str, log: Log, name: str | None = None) -> list[str]:
  """Removes the scratch directories of killed or abandoned `write_atomically` calls in `parent`.

  A scratch directory is stale when no live process holds its flock, and either the process named
  in it (on this host) has ended, or nothing in it changed for `STALE_AFTER_S`. A live writer holds
  the flock from just after creating its directory until the rename (the kernel drops it when the
  process dies, in any pid namespace); in the instant before, and where flock is unsupported, its
  pid (alive, on this host) and its fresh files keep it. So a live writer's directory is never
  removed.

  Args:
    parent: the folder to look in.
    log: callable(str); one line per directory removed.
    name: only scratch directories of the processed directory `parent/name` (None: all of them).

  Returns:
    The removed paths.
  """
  removed = []
  try:
    entries = sorted(os.listdir(parent))
  except OSError:
    return removed
  for entry in entries:
    m = _SCRATCH_RE.match(entry)
    path = os.path.join(parent, entry)
    if not m or (name is not None and m.group("name") != name) or not os.path.isdir(path):
      continue
    try:
      reason = _stale_reason(path, m.group("host"), m.group("pid"))
    except OSError:
      continue  # Vanished meanwhile.
    if reason:
      shutil.rmtree(path, ignore_errors=True)
      log(f"data: removed stale temporary directory {path} ({reason})")
      removed.append(path)
  return removed
