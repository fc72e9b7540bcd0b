"""experiments/paper_runs.py: actor names of the paper's tables, run loading and checks."""

from __future__ import annotations

import pytest

import fake_runs

pr = fake_runs.load_experiment("paper_runs.py")


@pytest.mark.parametrize("actor, name", [
    ({"kind": "multvae", "shape": "ract", "loss": "multinomial"}, "VAE"),
    ({"kind": "multvae", "shape": "ract", "loss": "gaussian"}, "VAE (Gaussian)"),
    ({"kind": "multvae", "shape": "ract", "loss": "multinomial", "deterministic": True},
     "VAE (β = 0)"),
    ({"kind": "multvae", "shape": "linear", "loss": "multinomial"}, "VAE (Linear)"),
    ({"kind": "multdae", "shape": "liang", "loss": "multinomial"}, "DAE (Liang et al., 2018)"),
    ({"kind": "multdae", "shape": "ract", "loss": "multinomial"}, "DAE (RaCT's I-600-200-600-I)"),
    ({"kind": "multdae", "shape": "linear", "loss": "weighted_sq"}, "MF"),
    ({"kind": "multdae", "shape": "linear", "loss": "warp"}, "WARP"),
    ({"kind": "multvae", "shape": "ract", "loss": "lambdarank"}, "LambdaRank"),
])
def test_actor_names_of_the_presets(actor, name):
  assert pr.actor_name(actor) == name


def test_every_preset_has_a_distinct_name():
  from ract_jax import config_base as base
  names = set()
  for preset in base.ACTOR_PRESETS:
    c = base.get_base_config()
    base.apply_variant(c, preset, "test")
    names.add(pr.actor_name(c.actor.to_dict()))
  assert len(names) == len(base.ACTOR_PRESETS)


def test_stage_seconds_and_epochs(tmp_path):
  w = fake_runs.write_run(tmp_path / "r", {"kind": "multvae"}, {"actor": {}},
                          stage_seconds=(2.0, 1.0, 3.0), stage_epochs=(3, 2, 2))
  runs = pr.load_runs([str(w)])
  assert pr.stage_epochs(runs[0]["metrics"]) == {"actor": 3, "critic": 2, "ac": 2}
  assert pr.stage_seconds(runs[0]["metrics"]) == pytest.approx({"actor": 2, "critic": 1, "ac": 3})


def test_missing_or_broken_config(tmp_path):
  w = fake_runs.write_run(tmp_path / "r", {"kind": "multvae"}, {"actor": {}})
  (w / "config.json").write_text("{not json")
  with pytest.raises(pr.TableError, match="config.json: not valid JSON"):
    pr.load_runs([str(w)])
  (w / "config.json").unlink()
  with pytest.raises(pr.TableError, match="config.json: missing"):
    pr.load_runs([str(w)])
