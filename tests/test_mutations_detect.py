"""Detection: the oracle far above chance and above weaker models; ties; bad input."""

import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import default
from dnagen_jax.data import storage
from dnagen_jax import scoring
from dnagen_jax.data import synthetic
from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb
from dnagen_jax.errors import UserError
from dnagen_jax.mutations import detect
from dnagen_jax.mutations import generate
from dnagen_jax.mutations import mutation_csv
from dnagen_jax.mutations.mutation_csv import MutationPair

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UnigramScorer(scoring.Scorer):
  """Base frequencies only: sees substitutions between equally common bases as nothing."""

  name = "unigram"

  def __init__(self, seqs):
    counts = np.array([sum(s.count(b) for s in seqs) for b in "ACGT"], np.float64)
    self.logp = dict(zip("ACGT", np.log(counts / counts.sum())))

  def token_log_probs(self, seqs):
    return [np.array([self.logp[c] for c in s]) for s in seqs]


class CountingScorer(scoring.Scorer):
  def __init__(self, inner):
    self.inner, self.calls, self.seqs = inner, 0, 0

  def token_log_probs(self, seqs):
    self.calls += 1
    self.seqs += len(seqs)
    return self.inner.token_log_probs(seqs)


@pytest.fixture(scope="module")
def synthetic_data(tfds_dir):
  """(config, oracle scorer, unigram scorer fit on train) of the default synthetic data."""
  config = default.get_config()
  config.data.data_dir = tfds_dir
  source = gdb.markov_source(gdb.make_config(**storage.dataset_settings(config.data)))
  train = [r.sequence for r in storage.load_records(config.data, "train")]
  return config, scoring.OracleScorer(source), UnigramScorer(train)


@pytest.fixture(scope="module")
def sets(synthetic_data, tmp_path_factory):
  config = synthetic_data[0]
  d = tmp_path_factory.mktemp("sets")
  return {m: generate.generate_set(config.data, str(d / generate.file_name(m, 0)), m, 300, 0)
          for m in (1, 5)}


def test_oracle_detects_far_above_chance_and_beats_weaker_models(synthetic_data, sets):
  _, oracle, unigram = synthetic_data
  wrong = scoring.OracleScorer(synthetic.MarkovSource(order=3, alpha=1.0, seed=99))  # another chain
  for m, path in sets.items():
    pairs = mutation_csv.read(path)
    res = {name: detect.detect(s, pairs)["rules"] for name, s in
           (("oracle", oracle), ("unigram", unigram), ("wrong", wrong))}
    for rule in ("perplexity", "probability", "window"):
      assert res["oracle"][rule]["accuracy"] > 0.8, (m, rule, res)
      assert res["oracle"][rule]["accuracy"] > res["unigram"][rule]["accuracy"] + 0.1, (m, rule, res)
      assert res["oracle"][rule]["accuracy"] > res["wrong"][rule]["accuracy"] + 0.1, (m, rule, res)


def test_window_rule_is_exact_for_a_short_memory_model(synthetic_data, sets):
  """For a Markov chain of order 3 <= W, the window loses nothing against whole genes."""
  oracle = synthetic_data[1]
  pairs = mutation_csv.read(sets[5])
  res = detect.detect(oracle, pairs, window=20)
  assert res["rules"]["window"] == res["ablations"]["logodds"]
  assert res["alignment"] == "edits"
  # Without recorded edits the diffed region is wider but, for this model, exact too.
  no_edits = [dataclasses.replace(p, edits=None) for p in pairs]
  res2 = detect.detect(oracle, no_edits, window=20)
  assert res2["alignment"] == "diff" and res2["rules"] == res["rules"]
  assert res["single_edit_by_kind"]["sub"]["window"] == res["single_edit_by_kind"]["sub"]["probability"]


def test_one_scoring_call_and_deterministic(synthetic_data, sets):
  counting = CountingScorer(synthetic_data[1])
  pairs = mutation_csv.read(sets[1])
  first = detect.detect(counting, pairs)
  assert counting.calls == 1 and counting.seqs <= 2 * len(pairs)
  assert detect.detect(counting, mutation_csv.read(sets[1])) == first


def test_ties_count_as_wrong():
  class Flat(scoring.Scorer):
    def token_log_probs(self, seqs):
      return [np.full(len(s), math.log(0.25)) for s in seqs]

  pairs = [MutationPair("1", "ACGT", "ACCT", (("sub", 2, "C"),)),   # same length: a tie everywhere
           MutationPair("2", "ACGT", "ACGT", ())]                   # edits that undid each other
  res = detect.detect(Flat(), pairs)
  for rule, s in res["rules"].items():
    assert s == {"accuracy": 0.0, "correct": 0, "ties": 2}, rule
  assert res["identical_pairs"] == 1


def test_detect_run_writes_json_and_table(synthetic_data, sets, tmp_path, monkeypatch, capsys):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps({"model": {"name": "lstm"}}))
  monkeypatch.setattr(detect, "load_scorer", lambda wd: synthetic_data[1])
  res = detect.run(str(workdir), sets[1])
  out = capsys.readouterr().out
  assert "perplexity" in out and "window (W=20)" in out
  saved = json.load(open(workdir / "detect_mutations_max1_seed0.json"))
  assert saved["rules"] == res["rules"] and saved["n"] == 300 and saved["model"] == "lstm"
  assert detect.cached(str(workdir), sets[1], 20) == saved
  assert detect.cached(str(workdir), sets[1], 10) is None


def _main(*args):
  return subprocess.run([sys.executable, "-m", "dnagen_jax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["missing_column", "invalid_character", "no_model"])
def test_bad_input_is_one_line_exit_2(tmp_path, case):
  header = "NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence\n"
  text, expect = {
      "missing_column": ("NCBIGeneID,RealNucleotideSequence\n1,<ACGT>\n",
                         "missing column MutatedNucleotideSequence"),
      "invalid_character": (header + "1,<ACGT>,<AC-T>\n", "row 1 (NCBIGeneID 1), column MutatedNucleotideSequence: invalid character '-' at position 3"),
      "no_model": (header + "1,<ACGT>,<ACT>\n", "no trained model here"),
  }[case]
  csv_path = tmp_path / "m.csv"
  csv_path.write_text(text)
  if case != "invalid_character":  # main calls detect.run: the same check in-process (no 3 s start-up)
    with pytest.raises(UserError) as e:
      detect.run(str(tmp_path / "empty"), str(csv_path))
    assert expect in str(e.value) and "\n" not in str(e.value)
    return
  proc = _main("--mode=detect", f"--workdir={tmp_path / 'empty'}", f"--mutations={csv_path}")
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and expect in lines[0], proc.stderr
  assert "Traceback" not in proc.stderr
