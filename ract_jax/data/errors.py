"""The errors of the data pipeline: bad input, damaged files, parameters that do not fit."""

from __future__ import annotations


class DataError(ValueError):
  """Bad or missing input data, or protocol parameters that do not fit the data.

  The message is meant for the person running the program: it names the file (and line) and says
  what to change. Command-line entry points print it without a traceback.
  """


class DamagedFileError(DataError):
  """A file of a processed directory exists but cannot be read (truncated, overwritten, ...).

  Attributes:
    file: the absolute path of the file.
    problem: what went wrong, e.g. "BadZipFile: File is not a zip file".
  """

  def __init__(self, file: str, problem: str, advice: str = ""):
    self.file, self.problem = file, problem
    super().__init__(f"{file}: cannot be read ({problem}).{' ' + advice if advice else ''}")
