"""Raw histories -> rows of a saved model's item indices: the TSV reader (header, ratings and the
model's threshold, duplicates, unknown items, malformed lines named by file and line) and dicts."""

import jax
import numpy as np
import pytest

from configs import default
from ract_jax import actors, histories, model_io
from ract_jax.data.errors import DataError

VOCAB = ["10", "20", "30", "40", "50"]


def _model(tmp_path, threshold=None):
  c = default.get_config("smoke")
  c.data.rating_threshold = threshold
  params = actors.init(jax.random.PRNGKey(0), c.actor, len(VOCAB))
  info = model_io.model_info("actor", {}, c.actor, c.data, c.eval, len(VOCAB), {})
  model_io.write(str(tmp_path), params, info, VOCAB)
  return model_io.read(str(tmp_path))


def _rows(h):
  return {u: h.items.row(i).tolist() for i, u in enumerate(h.users)}


def test_tsv_with_header_duplicates_and_unknown_items(tmp_path):
  model = _model(tmp_path)
  path = tmp_path / "in.tsv"
  path.write_text("user\titem\nb\t30\na\t10\nb\t030\nb\t99\na\t50\n\nc\t20\n")
  h = histories.read_tsv(str(path), model)
  assert h.users == ["b", "a", "c"]  # In order of first appearance.
  assert _rows(h) == {"b": [2], "a": [0, 4], "c": [1]}  # '030' is item 30 again: counted once.
  assert h.n_unknown == 1 and h.n_below_threshold == 0
  assert h.notes() == ["1 interactions with items the model does not know were ignored"]


def test_rating_column_and_the_models_threshold(tmp_path):
  model = _model(tmp_path, threshold=3.5)
  path = tmp_path / "in.tsv"
  path.write_text("u\t10\t5\nu\t20\t3.5\nu\t30\t4\nv\t40\t1\n")
  h = histories.read_tsv(str(path), model)
  assert _rows(h) == {"u": [0, 2], "v": []}  # v keeps an empty history.
  assert h.n_below_threshold == 2
  # Without a threshold in the model, ratings are read and ignored.
  h = histories.read_tsv(str(path), _model(tmp_path / "nothr"))
  assert _rows(h) == {"u": [0, 1, 2], "v": [3]} and h.n_below_threshold == 0


@pytest.mark.parametrize("text,line,what", [
    ("u\t10\nu\n", 2, "expected 2 fields, found 1"),
    ("user\titem\nu\t10\nu\t20\t5\t1\n", 3, "expected 2 fields, found 4"),
    ("u\t10\t4\nu\t20\tgood\n", 2, "field 3 should be a number"),
    ("u\t10\t4\nu\t20\n", 2, "expected 3 fields, found 2"),
    ("u 10\n", 1, "1 tab-separated fields"),
    ("user\titem\tscore\nu\t10\t1\n", 1, "a header other than"),
])
def test_malformed_lines_are_named(tmp_path, text, line, what):
  model = _model(tmp_path)
  path = tmp_path / "bad.tsv"
  path.write_text(text)
  with pytest.raises(DataError) as e:
    histories.read_tsv(str(path), model)
  assert f"{path}:{line}:" in str(e.value) and what in str(e.value)


@pytest.mark.parametrize("text", ["", "\n\n", "user\titem\n"])
def test_empty_input_is_an_error(tmp_path, text):
  path = tmp_path / "empty.tsv"
  path.write_text(text)
  with pytest.raises(DataError, match="no interactions"):
    histories.read_tsv(str(path), _model(tmp_path))


def test_missing_file(tmp_path):
  with pytest.raises(DataError, match="cannot read the input file"):
    histories.read_tsv(str(tmp_path / "nowhere.tsv"), _model(tmp_path))


def test_from_dict(tmp_path):
  model = _model(tmp_path)
  h = histories.from_dict(model, {"x": ["50", 10, "10", "77"], "y": [], 3: np.array([20, 30])})
  assert h.users == ["x", "y", 3]
  assert _rows(h) == {"x": [4, 0], "y": [], 3: [1, 2]} and h.n_unknown == 1
  with pytest.raises(ValueError, match="histories\\['x'\\] must be a sequence"):
    histories.from_dict(model, {"x": "10"})
