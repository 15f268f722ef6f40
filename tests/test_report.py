"""The report: both tables, the plot and report.json from fake trained workdirs."""

import json
import os

import numpy as np
import pytest

from configs import default
from dnagen_jax import report
from dnagen_jax import scoring
from dnagen_jax.data import synthetic
from dnagen_jax.errors import UserError


class WrongChainScorer(scoring.OracleScorer):
  """A model that learned another chain: near chance, as a stand-in for a bad model."""

  def __init__(self):
    super().__init__(synthetic.MarkovSource(order=2, seed=5))


def _workdir(path, tfds_dir, model, test_ppl, oracle=True):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.model.name = model
  os.makedirs(path)
  with open(os.path.join(path, "config.json"), "w") as f:
    f.write(config.to_json())
  results = {"model": model, "params": 1234, "nucleotides_seen": 10**6, "val_perplexity": test_ppl,
             "test_perplexity": test_ppl, "test_bits_per_nucleotide": float(np.log2(test_ppl))}
  if oracle:
    results["oracle_test_perplexity"] = 2.883
  with open(os.path.join(path, "results.json"), "w") as f:
    json.dump(results, f)
  return path


def _oracle_by_hand(tfds_dir):
  """The synthetic source's test perplexity and scorer, from the data set's own records."""
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.data.data_dir = tfds_dir
  scorer = scoring.OracleScorer(storage.oracle_source(config.data))
  test = [r.sequence for r in storage.load_records(config.data, "test")]
  return float(np.exp(-np.concatenate(scorer.token_log_probs(test)).mean())), scorer, config.data


def test_report_writes_tables_plot_and_json_and_reuses_cache(tmp_path, tfds_dir, monkeypatch, capsys):
  a = _workdir(str(tmp_path / "lstm_run"), tfds_dir, "lstm", 3.1, oracle=False)
  b = _workdir(str(tmp_path / "ngram_run"), tfds_dir, "ngram", 3.9, oracle=False)
  loads = []

  def load(wd):
    loads.append(wd)
    return WrongChainScorer()

  monkeypatch.setattr(report, "load_scorer", load)
  out = str(tmp_path / "report")
  rep = report.run([a, b], out, num_pairs=40)
  assert sorted(loads) == sorted([a, b])  # each model loaded once for its 9 sets
  printed = capsys.readouterr().out
  assert "[report 27/27] oracle: MAX=10 seed=2" in printed

  assert [m["label"] for m in rep["models"]] == ["lstm", "ngram", "oracle"]
  oracle = rep["models"][2]["accuracy"]
  for rule in ("perplexity", "probability", "window"):
    for m in ("1", "5", "10"):
      assert len(oracle[rule][m]["values"]) == 3
      assert oracle[rule][m]["mean"] > rep["models"][0]["accuracy"][rule][m]["mean"]
  # Neither workdir names the oracle's perplexity: the report computes it, and per-token scoring agrees.
  oracle_ppl, oracle_scorer, data_config = _oracle_by_hand(tfds_dir)
  assert rep["models"][2]["results"]["test_perplexity"] == pytest.approx(oracle_ppl, rel=1e-9)
  assert abs(oracle_ppl - 2.8829) < 1e-4            # the README's oracle of the default source
  # The oracle's perplexity-rule accuracy on the MAX=5 seed-1 set, recomputed pair by pair.
  from dnagen_jax.mutations import mutation_csv  # pylint: disable=g-import-not-at-top
  pairs = mutation_csv.read(report.ensure_set(data_config, out, 5, 1, 40))  # the report's own set file
  mean_lp = lambda s: float(oracle_scorer.token_log_probs([s])[0].mean())
  by_hand = np.mean([p.real != p.mutated and mean_lp(p.real) > mean_lp(p.mutated) for p in pairs])
  assert oracle["perplexity"]["5"]["values"][1] == pytest.approx(by_hand, abs=1e-12)

  tables = open(os.path.join(out, "tables.md")).read()
  assert "| lstm | " in tables and "| oracle | " in tables and " ± " in tables
  assert "| window | oracle |" in tables and "MAX=10" in tables
  assert open(os.path.join(out, "accuracy.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
  assert json.load(open(os.path.join(out, "report.json"))) == json.loads(json.dumps(rep))

  # Same models, same sets: every number comes from the cache, no model is loaded.
  loads.clear()
  again = report.run([a, b], out, num_pairs=40)
  assert loads == [] and "(cached)" in capsys.readouterr().out
  assert [m["accuracy"] for m in again["models"]] == [m["accuracy"] for m in rep["models"]]


def test_report_needs_trained_workdirs(tmp_path):
  with pytest.raises(UserError, match="needs --workdirs"):
    report.run([], str(tmp_path / "r"))
  with pytest.raises(UserError, match="no trained model here"):
    report.run([str(tmp_path / "nothing")], str(tmp_path / "r"))
