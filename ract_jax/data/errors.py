"""The error of the data pipeline: bad input, or parameters that do not fit the data."""

from __future__ import annotations


class DataError(ValueError):
  """Bad or missing input data, or protocol parameters that do not fit the data.

  The message is meant for the person running the program: it names the file (and line) and says
  what to change. Command-line entry points print it without a traceback.
  """

