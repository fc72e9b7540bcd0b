"""Tests for EASE's lambda search with one eigendecomposition (`ease_search.search`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ract_jax import evaluate
from ract_jax.baselines import ease, ease_search
from ract_jax.device import batches
from ract_jax.data.csr import CSR, HeldOut
from ract_jax.device import parallel


def _clustered(seed: int, n_users: int, n_items: int = 14, p_in: float = 0.6, p_out: float = 0.08):
  """0/1 `[n_users, n_items]`: each user likes one of three item clusters (so lambda matters)."""
  rng = np.random.RandomState(seed)
  cluster = rng.randint(0, 3, size=n_users)
  item_cluster = np.arange(n_items) % 3
  p = np.where(cluster[:, None] == item_cluster[None, :], p_in, p_out)
  return (rng.rand(n_users, n_items) < p).astype(np.float32)


def _csr(dense: np.ndarray) -> CSR:
  rows, items = np.nonzero(dense)
  return CSR.from_pairs(rows, items, dense.shape[0], dense.shape[1])


def _entries(dense: np.ndarray) -> batches.Entries:
  """The rows' entries as the evaluator builds them (padded to a capacity of 1024)."""
  csr = _csr(dense)
  dev = batches.DeviceCSR(jnp.asarray(csr.indptr, jnp.int32), jnp.asarray(csr.indices, jnp.int32))
  return batches.gather_entries(dev, jnp.arange(csr.n_rows, dtype=jnp.int32),
                                batches.entry_capacity(csr, csr.n_rows))


def _closed_form(x: np.ndarray, lam: float) -> np.ndarray:
  m = x.shape[1]
  p = np.linalg.inv(x.T.astype(np.float64) @ x + lam * np.eye(m))
  b = np.eye(m) - p / np.diag(p)[None, :]
  np.fill_diagonal(b, 0.0)
  return b


def _ndcg(scores: np.ndarray, fold_in: np.ndarray, held: np.ndarray, k: int = 100) -> float:
  """Mean NDCG@k over users with held-out items; fold-in items are masked out (as evaluate.py)."""
  s = np.where(fold_in > 0, -np.inf, scores)
  k = min(k, s.shape[1])
  top = np.argsort(-s, axis=1, kind="stable")[:, :k]
  disc = 1.0 / np.log2(np.arange(2, k + 2))
  dcg = (np.take_along_axis(held, top, 1) * disc).sum(1)
  n = held.sum(1).astype(int)
  idcg = np.array([disc[:min(c, k)].sum() for c in n])
  ok = n > 0
  return float(np.mean(dcg[ok] / idcg[ok]))


@pytest.fixture(scope="module")
def data():
  train = _clustered(0, 120)
  users = _clustered(1, 40)
  rng = np.random.RandomState(2)
  held = users * (rng.rand(*users.shape) < 0.3)
  return train, users - held, held


def _numpy_validate(fold_in, held, calls=None):
  def validate(score_fn, params):
    if calls is not None:
      calls.append((score_fn, params))
    scores = np.asarray(score_fn(params, _entries(fold_in), fold_in))
    return {"ndcg@100": _ndcg(scores, fold_in, held)}
  return validate


@pytest.mark.parametrize("float64", [False, True])
@pytest.mark.parametrize("lam", [1.0, 10.0, 1000.0])
def test_lambda_scores_match_direct_inversion(data, float64, lam):
  train, fold_in, _ = data
  v, s = ease_search.eigen(ease.gram_matrix(_csr(train)), float64=float64)
  xv = ease_search.users_times_v(_csr(fold_in), v)
  got = np.asarray(ease_search.lambda_scores(ease_search.lambda_params(xv, v, s, lam),
                                             _entries(fold_in), fold_in))
  want = fold_in @ _closed_form(train, lam)
  # X B, the identity part included (the evaluator masks it; here it is compared too).
  np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max())


def test_search_picks_the_brute_force_lambda(data):
  train, fold_in, held = data
  lams = (0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
  brute = [_ndcg(fold_in @ _closed_form(train, lam), fold_in, held) for lam in lams]
  best = int(np.argmax(brute))
  assert 0 < best < len(lams) - 1  # The data make the optimum an interior, unambiguous point:
  assert brute[best] - sorted(brute)[-2] > 1e-3  # the test could otherwise pass by luck.
  calls, logs = [], []
  hp, val, b = ease_search.search(_csr(train), _csr(fold_in), lams,
                                  _numpy_validate(fold_in, held, calls), max_items=None,
                                  log=logs.append)
  assert hp == {"lam": lams[best]}
  assert val["ndcg@100"] == pytest.approx(brute[best], abs=1e-6)
  np.testing.assert_array_equal(np.asarray(b), np.asarray(ease.fit(_csr(train), lams[best])))
  # One function object and the same parameter shapes for every lambda (one compile), then the
  # chosen B through `direct_scores`.
  assert [c[0] for c in calls] == ([ease_search.lambda_scores] * len(lams)
                                   + [ease_search.direct_scores])
  shapes = [{k: (v.shape, v.dtype) for k, v in c[1].items()} for c in calls[:-1]]
  assert all(s == shapes[0] for s in shapes)
  assert sum(line.startswith("ease  {'lam'") for line in logs) == len(lams)
  assert not any("config.baselines.ease_lambdas" in line for line in logs)


def _script_then_exact(search_ndcgs, fold_in, held, calls):
  """Scripted search values for `lambda_scores`, the true NDCG@100 for the closed-form Bs."""
  it = iter(search_ndcgs)
  exact = _numpy_validate(fold_in, held)

  def validate(score_fn, params):
    calls.append(score_fn)
    if score_fn is ease_search.lambda_scores:
      return {"ndcg@100": next(it)}
    return exact(score_fn, params)
  return validate


def test_lambdas_close_to_the_best_are_rechecked_with_the_closed_form(data):
  train, fold_in, held = data
  lams = (1.0, 10.0, 1000.0)
  brute = [_ndcg(fold_in @ _closed_form(train, lam), fold_in, held) for lam in lams]
  good, bad = int(np.argmax(brute)), int(np.argmin(brute))
  assert brute[good] - brute[bad] > 1e-3  # The recheck decides; the search's values do not.
  # The (scripted) search ranks the worse lambda first, within RECHECK_NDCG of the better one.
  scripted = [0.1] * len(lams)
  scripted[bad], scripted[good] = 0.5, 0.5 - ease_search.RECHECK_NDCG / 2
  calls, logs = [], []
  hp, val, b = ease_search.search(_csr(train), _csr(fold_in), lams,
                                  _script_then_exact(scripted, fold_in, held, calls),
                                  max_items=None, log=logs.append)
  assert hp == {"lam": lams[good]}
  assert val["ndcg@100"] == pytest.approx(brute[good], abs=1e-6)
  np.testing.assert_array_equal(np.asarray(b), np.asarray(ease.fit(_csr(train), lams[good])))
  assert calls.count(ease_search.direct_scores) == 2  # Only the two close lambdas.
  assert any("re-validated with the closed form" in line for line in logs)
  # With no margin, the search's own best is taken (one closed-form solve): the wrong lambda.
  calls = []
  hp, _, _ = ease_search.search(_csr(train), _csr(fold_in), lams,
                                _script_then_exact(scripted, fold_in, held, calls),
                                max_items=None, log=lambda s: None, recheck=0.0)
  assert hp == {"lam": lams[bad]} and calls.count(ease_search.direct_scores) == 1
  with pytest.raises(ValueError, match="recheck"):
    ease_search.search(_csr(train), _csr(fold_in), lams, _scripted(()), max_items=None,
                       log=lambda s: None, recheck=-1e-3)


def test_eigen_leaves_the_gram_matrix_unchanged(data):
  gram = ease.gram_matrix(_csr(data[0]))
  before = gram.copy()
  for float64 in (False, True):
    v, s = ease_search.eigen(gram, float64=float64)
    np.testing.assert_array_equal(gram, before)  # Kept for the closed-form solves.
    np.testing.assert_allclose(np.asarray(v) @ np.diag(np.asarray(s)) @ np.asarray(v).T, before,
                               atol=1e-4 * np.abs(before).max())


def test_config_chooses_the_decomposition(data, monkeypatch):
  from ract_jax import baselines, config_base  # pylint: disable=g-import-not-at-top
  seen, eigen = [], ease_search.eigen
  monkeypatch.setattr(ease_search, "eigen",
                      lambda gram, float64: seen.append(float64) or eigen(gram, float64))
  block = config_base.get_base_config().baselines
  assert block.ease_float64 is False  # The default: float32, rechecked.
  block.ease_lambdas = (1.0, 10.0)
  for value in (False, True):
    block.ease_float64 = value
    baselines.REGISTRY["ease"].search(_csr(data[0]), _csr(data[1]), block, _scripted((0.3, 0.2)),
                                      lambda s: None)
  assert seen == [False, True]


def test_search_through_the_evaluator_compiles_once(data, monkeypatch):
  train, fold_in, held = data
  split = HeldOut(uids=np.arange(len(fold_in)), fold_in=_csr(fold_in), held_out=_csr(held))
  ev = evaluate.Evaluator(split, parallel.make_mesh(), batch_size=16)
  traces, lambda_scores = [], ease_search.lambda_scores

  def counted(params, entries, x):  # Called once per trace of the evaluator's program.
    traces.append(1)
    return lambda_scores(params, entries, x)

  monkeypatch.setattr(ease_search, "lambda_scores", counted)
  lams = (1.0, 10.0, 100.0, 1000.0)
  validate = lambda f, p: evaluate.summarize(ev.run(f, p))
  hp, val, b = ease_search.search(_csr(train), split.fold_in, lams, validate, max_items=None,
                                  log=lambda s: None)
  assert len(traces) == 1
  brute = [validate(ease_search.direct_scores, ease.fit(_csr(train), lam))["ndcg@100"]
           for lam in lams]
  assert hp == {"lam": lams[int(np.argmax(brute))]}
  assert val["ndcg@100"] == max(brute)
  assert val["ndcg@100"] == pytest.approx(_ndcg(fold_in @ np.asarray(b), fold_in, held), abs=1e-6)


def _scripted(ndcgs):
  """A validate returning the given NDCG@100 for the search's calls, in order."""
  it = iter(ndcgs)
  return lambda score_fn, params: {
      "ndcg@100": next(it) if score_fn is ease_search.lambda_scores else -1.0}


@pytest.mark.parametrize("ndcgs, chosen, end", [
    ((0.5, 0.4, 0.3, 0.2), 1.0, "smallest"),
    ((0.2, 0.3, 0.4, 0.5), 1000.0, "largest"),
    ((0.2, 0.5, 0.4, 0.3), 10.0, None),
])
def test_edge_warning_at_each_end(data, ndcgs, chosen, end):
  logs = []
  hp, _, _ = ease_search.search(_csr(data[0]), _csr(data[1]), (1.0, 10.0, 100.0, 1000.0),
                                _scripted(ndcgs), max_items=None, log=logs.append)
  assert hp == {"lam": chosen}
  warnings = [line for line in logs if "config.baselines.ease_lambdas" in line]
  if end is None:
    assert not warnings
  else:
    assert len(warnings) == 1 and end in warnings[0] and "Widen" in warnings[0]


def test_edge_warning_uses_the_grid_range_not_its_order(data):
  logs = []
  hp, _, _ = ease_search.search(_csr(data[0]), _csr(data[1]), (100.0, 1.0, 10.0),
                                _scripted((0.3, 0.5, 0.4)), max_items=None, log=logs.append)
  assert hp == {"lam": 1.0}
  assert any("smallest" in line and "config.baselines.ease_lambdas" in line for line in logs)


def test_ties_keep_the_earliest_lambda(data):
  train = _csr(data[0])
  for ndcgs, lams, want in (((0.4, 0.4, 0.4), (10.0, 1.0, 100.0), 10.0),
                            ((0.1, 0.3, 0.3, 0.2), (1.0, 3.0, 5.0, 9.0), 3.0)):
    hp, _, _ = ease_search.search(train, _csr(data[1]), lams, _scripted(ndcgs), max_items=None,
                                  log=lambda s: None)
    assert hp == {"lam": want}


def test_non_finite_ndcg_is_skipped_with_a_message(data):
  logs = []
  hp, _, _ = ease_search.search(_csr(data[0]), _csr(data[1]), (1.0, 10.0, 100.0),
                                _scripted((0.3, float("nan"), 0.2)), max_items=None,
                                log=logs.append)
  assert hp == {"lam": 1.0}
  assert any("not considered" in line for line in logs)
  with pytest.raises(ValueError, match="finite"):
    ease_search.search(_csr(data[0]), _csr(data[1]), (1.0, 10.0), _scripted((float("nan"),) * 2),
                       max_items=None, log=lambda s: None)


@pytest.mark.parametrize("lams", [(), (0.0, 10.0), (-1.0,), (float("inf"),)])
def test_bad_lambdas_name_the_option(data, lams):
  with pytest.raises(ValueError, match="config.baselines.ease_lambdas"):
    ease_search.search(_csr(data[0]), _csr(data[1]), lams, _scripted(()), max_items=None,
                       log=lambda s: None)


def test_memory_guard_refuses_before_allocating(data, monkeypatch):
  train = _csr(data[0])
  m = train.n_items

  def no_allocation(*args, **kwargs):
    raise AssertionError("the Gram matrix was built before the memory check")

  monkeypatch.setattr(ease, "gram_matrix", no_allocation)
  validate = _scripted(())  # Raises StopIteration if called.
  for float64 in (False, True):
    with pytest.raises(ValueError) as e:
      ease_search.search(train, _csr(data[1]), (1.0, 10.0), validate, max_items=None,
                         log=lambda s: None, float64=float64,
                         memory_bytes=4 * m * m)  # Room for one M x M float32 only.
    msg = str(e.value)
    assert "config.baselines.ease_max_items" in msg and f"M = {m}" in msg and "GB" in msg
  with pytest.raises(ValueError, match="config.baselines.ease_max_items"):
    ease_search.search(train, _csr(data[1]), (1.0,), validate, max_items=m - 1, log=lambda s: None)


def test_memory_arithmetic_for_msd_and_ml20m():
  limit = {"host": (24e9, "a 24 GB host")}
  for float64 in (False, True):
    cpu = ease_search.PEAK_MATRICES["cpu", float64]
    with pytest.raises(ValueError,
                       match=r"M = 41,140 .*24\.0 GB .*config.baselines.ease_max_items"):
      ease.check_memory(41_140, cpu, limit)  # MSD on a 24 GB CPU machine: refused.
    ease.check_memory(20_108, cpu, limit)  # ML-20M fits.
  bytes_, source = ease.memory_limits()["host"]
  assert bytes_ > 0 and source


def test_default_lambdas():
  lams = np.array(ease_search.DEFAULT_LAMBDAS)
  assert len(lams) == 16 and lams[0] == 1.0 and lams[-1] == 1e5
  np.testing.assert_allclose(np.diff(np.log10(lams)), 1 / 3, atol=2e-3)  # log-spaced
