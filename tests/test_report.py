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


def _workdir(path, tfds_dir, model, test_ppl):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.model.name = model
  os.makedirs(path)
  with open(os.path.join(path, "config.json"), "w") as f:
    f.write(config.to_json())
  with open(os.path.join(path, "results.json"), "w") as f:
    json.dump({"model": model, "params": 1234, "nucleotides_seen": 10**6, "val_perplexity": test_ppl,
               "test_perplexity": test_ppl, "test_bits_per_nucleotide": float(np.log2(test_ppl)),
               "oracle_test_perplexity": 2.883}, f)
  return path


def test_report_writes_tables_plot_and_json_and_reuses_cache(tmp_path, tfds_dir, monkeypatch, capsys):
  a = _workdir(str(tmp_path / "lstm_run"), tfds_dir, "lstm", 3.1)
  b = _workdir(str(tmp_path / "ngram_run"), tfds_dir, "ngram", 3.9)
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
  assert rep["models"][2]["results"]["test_perplexity"] == pytest.approx(2.883)

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
