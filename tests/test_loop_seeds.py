"""bench/loop_seeds.py: the paired comparison of several `bench --loop` seeds."""

import json
import os

import numpy as np
from scipy import stats

from dnagen_jax.bench import loop_seeds


def _loop_json(path, seed, ours, theirs, test=(3.8, 3.81), title="lstm 3x256"):
  os.makedirs(path)
  result = {"title": title, "config": {"train": {"seed": seed}},
            "equal_nucleotides": [{"nucleotides": 1e6, "perplexity": 9.0, "other_perplexity": 9.0},
                                  {"nucleotides": 3.3e6, "perplexity": ours, "other_perplexity": theirs}],
            "sides": {"dnagen_jax": {"test_perplexity": test[0]}, "PyTorch": {"test_perplexity": test[1]}}}
  with open(os.path.join(path, "loop.json"), "w") as f:
    json.dump(result, f)
  return str(path)


def test_paired_interval_is_a_paired_t_interval(tmp_path):
  ours, theirs = [3.84, 3.83, 3.85], [3.83, 3.835, 3.83]
  dirs = [_loop_json(tmp_path / f"s{i}", i, a, b) for i, (a, b) in enumerate(zip(ours, theirs))]
  summary = loop_seeds.summarise([loop_seeds.read(d) for d in dirs])
  diff = np.subtract(ours, theirs)
  lo, hi = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
  np.testing.assert_allclose(summary["validation"]["interval"], [lo, hi], rtol=1e-12)
  np.testing.assert_allclose(summary["validation"]["mean"], [np.mean(ours), np.mean(theirs)])
  assert abs(summary["test"]["difference"] + 0.01) < 1e-12  # 3.80 - 3.81 for every seed
  text = loop_seeds.report(summary)
  assert "ours - PyTorch +0.0083" in text and "3.3" in text


def test_bad_workdirs_are_one_line(tmp_path, capsys):
  a = _loop_json(tmp_path / "a", 0, 3.8, 3.8)
  b = _loop_json(tmp_path / "b", 0, 3.8, 3.8)
  c = _loop_json(tmp_path / "c", 1, 3.8, 3.8, title="gru 3x256")
  for args, needle in (([a, b], "share a seed"), ([a, c], "different runs"),
                       ([a, str(tmp_path / "none")], "not a finished bench --loop result")):
    assert loop_seeds.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def _variant_json(path, seed, perplexity, test, init="flax", nucleotides=3358433):
  """A `bench --loop --notorch` result: the project's side only."""
  os.makedirs(path)
  result = {"title": "transformer 4x256", "config": {"train": {"seed": seed}, "model": {"transformer_init": init}},
            "sides": {"dnagen_jax": {"points": [{"nucleotides_seen": 1e6, "perplexity": 9.0},
                                                {"nucleotides_seen": nucleotides, "perplexity": perplexity}],
                                     "test_perplexity": test}}}
  with open(os.path.join(path, "loop.json"), "w") as f:
    json.dump(result, f)
  return str(path)


def test_against_pairs_two_variants_of_the_project_by_seed(tmp_path, capsys):
  a = [3.81, 3.82, 3.815]
  b = {2: 3.83, 0: 3.825, 1: 3.82}  # listed in another seed order: pairing goes by seed
  first = [_variant_json(tmp_path / f"pt{i}", i, v, v + 0.01, init="pytorch") for i, v in enumerate(a)]
  second = [_variant_json(tmp_path / f"fx{i}", i, v, v + 0.02) for i, v in b.items()]
  assert loop_seeds.main(first + ["--against"] + second + ["--out", str(tmp_path / "s.json")]) == 0
  out = capsys.readouterr().out
  assert "model.transformer_init: pytorch vs flax" in out
  summary = json.load(open(tmp_path / "s.json"))
  diff = np.subtract(a, [b[0], b[1], b[2]])
  lo, hi = stats.t.interval(0.95, 2, loc=diff.mean(), scale=stats.sem(diff))
  np.testing.assert_allclose(summary["validation"]["interval"], [lo, hi], rtol=1e-12)
  np.testing.assert_allclose(summary["test"]["difference"], diff.mean() - 0.01, rtol=1e-9)
  assert "first - second" in out


def test_against_refuses_unpaired_variants_in_one_line(tmp_path, capsys):
  a0, a1 = _variant_json(tmp_path / "a0", 0, 3.8, 3.8), _variant_json(tmp_path / "a1", 1, 3.8, 3.8)
  b0, b2 = _variant_json(tmp_path / "b0", 0, 3.8, 3.8), _variant_json(tmp_path / "b2", 2, 3.8, 3.8)
  short = _variant_json(tmp_path / "short", 0, 3.8, 3.8, nucleotides=1000)
  for args, needle in (([a0, a1, "--against", b0, b2], "different seeds"),
                       ([a0, "--against", short], "compare runs of the same data"),
                       ([a0, a1, "--against", b0, b0], "share a seed"),
                       ([a0], "compare variants with --against"),
                       ([a0, "--against", _loop_json(tmp_path / "torn", 0, 3.8, 3.8)], "no validation point")):
    assert loop_seeds.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
