"""Long records scored whole: strided windows (scoring/strided.py) and carried recurrent state (scoring/carry.py)."""

import json
import os

import ml_collections
import numpy as np
import pytest
from flax import nnx

from dnagen_jax import config_check
from dnagen_jax import models
from dnagen_jax import workdir as workdir_lib
from dnagen_jax.errors import UserError
from dnagen_jax.mixture.model import MixtureScorer
from dnagen_jax.ngram.infinigram import InfiniGram
from dnagen_jax.ngram.model import NGramModel
from dnagen_jax.ngram.scorer import NGramScorer
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.scoring import carry
from dnagen_jax.scoring import strided
from dnagen_jax.scoring.neural import NeuralScorer
from tests.helpers import tiny_config


def random_dna(n: int, seed: int) -> str:
  """A sequence with some structure (repeats), so that long contexts matter."""
  rng = np.random.default_rng(seed)
  unit = "".join(rng.choice(list("ACGT"), 40))
  parts = [unit if rng.random() < 0.3 else "".join(rng.choice(list("ACGT"), 40)) for _ in range(n // 40 + 1)]
  return "".join(parts)[:n]


def neural_scorer(name: str, position_embedding: bool = False) -> NeuralScorer:
  """A freshly initialised tiny model as a NeuralScorer (no training: the protocol is what is tested)."""
  config = tiny_config("", name)
  config.model.position_embedding = position_embedding
  config = ml_collections.ConfigDict(config.to_dict())
  model = models.create_model(config.model, 0, 8)
  graphdef, params = nnx.split(model)
  return NeuralScorer(config, graphdef, params, mesh_utils.make_mesh())


@pytest.fixture(scope="module")
def gru():
  return neural_scorer("gru")


@pytest.fixture(scope="module")
def train_seqs():
  return [random_dna(3000, s) for s in range(3)]


@pytest.mark.parametrize("length,window,stride,kmer", [
    (1, 8, 4, 1), (8, 8, 4, 1), (9, 8, 4, 1), (100, 8, 8, 1), (101, 8, 1, 1), (1000, 128, 48, 1),
    (999, 12, 6, 3), (1001, 12, 3, 3), (50, 10, 7, 1)])
def test_windows_score_every_nucleotide_once_with_context(length, window, stride, kmer):
  plan = strided.Plan(window, stride, kmer)
  spans = strided.window_spans(length, plan)
  begin, end, first = spans.T
  counts = np.zeros(length, np.int64)
  for b, e, f in spans:
    assert 0 <= b <= f < e <= length and e - b <= window
    counts[f:e] += 1
    assert f == 0 or f - b >= window - stride     # at least C nucleotides of context
    assert (f - b) % kmer == 0                     # whole tokens of context
  assert np.all(counts == 1)
  assert first[0] == 0 and end[-1] == length
  assert np.all(np.diff(begin) > 0)


def test_neural_strided_equals_windows_scored_one_by_one(gru):
  seq = random_dna(1000, 1)
  plan = strided.resolve_plan(gru, 128, 48)
  scores = strided.score_records(gru, [("r", seq), ("short", seq[:100])], plan)
  spans = strided.window_spans(len(seq), plan)
  reference = sum(float(gru.token_log_probs([seq[b:e]])[0][f - b:].sum()) for b, e, f in spans)
  assert scores[0].length == 1000 and scores[0].windows == len(spans)
  np.testing.assert_allclose(scores[0].log_likelihood, reference, rtol=1e-6)
  np.testing.assert_allclose(scores[1].log_likelihood,
                             float(gru.token_log_probs([seq[:100]])[0].sum()), rtol=1e-6)


def test_transformer_strided_and_its_window_limit():
  tr = neural_scorer("transformer")
  seq = random_dna(400, 2)
  plan = strided.resolve_plan(tr)  # default: max_len (128), half of it context
  assert (plan.window, plan.stride) == (128, 64)
  total = strided.totals(strided.score_records(tr, [("r", seq)], plan))
  spans = strided.window_spans(len(seq), plan)
  reference = sum(float(tr.token_log_probs([seq[b:e]])[0][f - b:].sum()) for b, e, f in spans)
  assert total["nucleotides"] == 400
  np.testing.assert_allclose(-total["bits_per_nucleotide"] * 400 * np.log(2), reference, rtol=1e-6)
  with pytest.raises(UserError, match="longer than this model takes"):
    strided.resolve_plan(tr, 129)
  with pytest.raises(UserError, match="larger than the window"):
    strided.resolve_plan(tr, 64, 65)
  with pytest.raises(UserError, match="positive"):
    strided.resolve_plan(tr, -1)
  with pytest.raises(UserError, match="LSTM or GRU"):
    carry.CarriedScorer(tr, 64)
  with pytest.raises(UserError, match="position embeddings"):
    carry.CarriedScorer(neural_scorer("gru", position_embedding=True), 64)


def test_ngram_strided_equals_whole_record_exactly(train_seqs):
  model = NGramModel.fit(train_seqs, 5, "kneser_ney")
  scorer = NGramScorer(model)
  seq = random_dna(2000, 7)
  whole = model.log_probs([seq])[0]
  plan = strided.resolve_plan(scorer, 100)        # default context: order - 1
  assert plan.context == 4
  assert np.array_equal(strided.strided_log_probs(scorer.token_log_probs, seq, plan), whole)
  wide = strided.resolve_plan(scorer, 100, 50)  # more context than needed: still exact
  assert np.array_equal(strided.strided_log_probs(scorer.token_log_probs, seq, wide), whole)
  short = strided.Plan(100, 98)                   # context 2 < 4: not the whole-record model
  assert not np.array_equal(strided.strided_log_probs(scorer.token_log_probs, seq, short), whole)
  k2 = NGramModel.fit(train_seqs, 3, "kneser_ney", kmer=2)
  s2 = NGramScorer(k2)
  plan2 = strided.resolve_plan(s2, 100)
  assert plan2.context == 4
  for n in (2001, 2000):
    np.testing.assert_allclose(strided.strided_log_probs(s2.token_log_probs, seq[:n], plan2),
                               k2.log_probs([seq[:n]])[0], rtol=0, atol=1e-12)
  with pytest.raises(UserError, match="multiples"):
    strided.resolve_plan(s2, 101)


def test_infinigram_and_mixture_strided(train_seqs):
  seq = random_dna(1500, 9)
  capped = NGramScorer(InfiniGram.fit(train_seqs, cap=6))
  plan = strided.resolve_plan(capped, 200)
  assert plan.context == 5
  assert np.array_equal(strided.strided_log_probs(capped.token_log_probs, seq, plan),
                        capped.token_log_probs([seq])[0])
  ig = NGramScorer(InfiniGram.fit(train_seqs))
  ngram = NGramScorer(NGramModel.fit(train_seqs, 4, "kneser_ney"))
  mix = MixtureScorer([ig, ngram], np.array([[0.3, 0.7], [0.6, 0.4]]), "12", "longest_match", ig.model)
  for scorer in (ig, mix):
    plan = strided.resolve_plan(scorer, 200, 120)
    spans = strided.window_spans(len(seq), plan)
    reference = sum(float(scorer.token_log_probs([seq[b:e]])[0][f - b:].sum()) for b, e, f in spans)
    got = strided.score_records(scorer, [("r", seq)], plan)[0]
    np.testing.assert_allclose(got.log_likelihood, reference, rtol=1e-6)
    assert got.length == len(seq)
  window, context_of, limit = mix.eval_defaults()
  assert window == 1 << 20 and limit == 0 and context_of(window) == 1 << 16


def test_carried_state_equals_the_whole_pass(gru):
  seq = random_dna(300, 3)
  whole = gru.token_log_probs([seq])[0]   # fits in one pass: the reference
  carried = carry.CarriedScorer(gru, 64, segments=1)
  np.testing.assert_allclose(carried.token_log_probs([seq])[0], whole, rtol=0, atol=2e-5)
  n, ll = zip(*carried.record_chunks(seq))
  assert sum(n) == 300
  np.testing.assert_allclose(sum(ll), whole.sum(), rtol=1e-5)
  # Several segments side by side: the first is the whole pass's start; all nucleotides once.
  split = carry.CarriedScorer(gru, 64, segments=3, warmup=32, min_segment=50)
  spans = split.segment_spans(300)
  assert len(spans) == 3 and spans[1][2] - spans[1][0] == 32
  lp = split.token_log_probs([seq])[0]
  assert lp.shape == (300,)
  np.testing.assert_allclose(lp[:100], whole[:100], rtol=0, atol=2e-5)


def test_eval_file_of_genes_gives_todays_numbers(gru, tmp_path, monkeypatch):
  genes = [random_dna(int(n), i) for i, n in enumerate(np.random.default_rng(0).integers(20, 128, 40))]
  long = random_dna(700, 99)
  path = tmp_path / "genes.fa"
  path.write_text("".join(f">g{i}\n{s}\n" for i, s in enumerate(genes)))
  both = tmp_path / "genome.fa"
  both.write_text(f">chr1 a long one\n{long}\n>g0\n{genes[0]}\n")
  monkeypatch.setattr(workdir_lib, "load_scorer", lambda _: gru)
  monkeypatch.setattr(config_check, "read_workdir_config", lambda _: gru.config.to_dict())
  result = workdir_lib.evaluate_file(str(tmp_path), str(path))
  today = gru.perplexity(genes)  # what --mode=eval computed before windows existed
  assert result["perplexity"] == today["perplexity"]
  assert result["nucleotides"] == today["nucleotides"] and result["genes"] == 40
  result = workdir_lib.evaluate_file(str(tmp_path), str(both), 128, 64)
  saved = json.loads((tmp_path / "eval_genome.json").read_text())
  assert saved["nucleotides"] == 700 + len(genes[0]) and saved["stride"] == 64
  assert [r["record"] for r in saved["per_record"]] == ["chr1", "g0"]
  assert saved["per_record"][0]["windows"] == len(strided.window_spans(700, strided.Plan(128, 64)))
  lines = (tmp_path / "eval_genome_records.tsv").read_text().splitlines()
  assert lines[0].split("\t") == list(strided.TSV_COLUMNS) and len(lines) == 3
  np.testing.assert_allclose(float(lines[2].split("\t")[2]), gru.token_log_probs([genes[0]])[0].sum(),
                             rtol=1e-6)
  carried = workdir_lib.evaluate_file(str(tmp_path), str(both), 64, 0, carry_state=True)
  whole = gru.token_log_probs([long])[0].sum() + gru.token_log_probs([genes[0]])[0].sum()
  np.testing.assert_allclose(carried["bits_per_nucleotide"] * carried["nucleotides"] * -np.log(2),
                             whole, rtol=1e-5)
  assert carried["carry_state"] and os.path.exists(tmp_path / "eval_genome_records.tsv")


def test_split_fasta_joins_test_windows_into_segments(tmp_path):
  from dnagen_jax.scoring import split_fasta  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data import sequence_io  # pylint: disable=g-import-not-at-top
  genome = {f"chr{i}": random_dna(6000, 20 + i) for i in range(2)}
  fasta = tmp_path / "genome.fa"
  fasta.write_text("".join(f">{k}\n{v}\n" for k, v in genome.items()))
  config = tiny_config(str(tmp_path / "tfds"), "gru")
  config.data.source, config.data.files = "files", str(fasta)
  config.data.window, config.data.stride, config.data.block_size = 100, 100, 500
  config.data.val_fraction, config.data.test_fraction = 0.2, 0.3
  workdir = tmp_path / "w"
  os.makedirs(workdir)
  config_check.write_or_check_workdir_config(config, str(workdir))
  out = tmp_path / "test.fa"
  count, total = split_fasta.write(str(workdir), "test", str(out))
  records = sequence_io.read_sequences(str(out))
  assert count == len(records) > 0 and total == sum(len(r.sequence) for r in records)
  ends = {}
  for r in records:  # each is one stretch of its chromosome, whole blocks, never adjacent to another
    chrom, span = r.record_id.split(":")
    a, b = map(int, span.split("-"))
    assert genome[chrom][a:b] == r.sequence and a % 500 == 0 and (b % 500 == 0 or b == 6000)
    assert ends.get(chrom) != a
    ends[chrom] = b
  with pytest.raises(UserError, match="must be train"):
    split_fasta.write(str(workdir), "dev", str(out))
  with pytest.raises(UserError, match="config.json missing"):
    split_fasta.write(str(tmp_path / "nothing"), "test", str(tmp_path / "x.fa"))
  assert not os.path.exists(tmp_path / "x.fa")


ECOLI = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "genomes",
                     "ecoli_k12_mg1655.fasta.gz")


@pytest.mark.slow
def test_a_bacterial_genome_scored_whole_by_an_ngram_in_windows():
  """E. coli (4.6 Mbp, one record): strided windows of 2^20 equal the whole-record pass exactly."""
  if not os.path.exists(ECOLI):
    pytest.skip("../shared/data/genomes/ecoli_k12_mg1655.fasta.gz not present")
  from dnagen_jax.data import sequence_io  # pylint: disable=g-import-not-at-top
  (rec,) = list(sequence_io.iter_records(ECOLI))
  model = NGramModel.fit([rec.sequence[:1_000_000]], 8, "kneser_ney")
  scorer = NGramScorer(model)
  plan = strided.resolve_plan(scorer)
  scores = strided.score_records(scorer, [rec], plan)
  whole = model.log_probs([rec.sequence])[0]
  assert scores[0].length == len(rec.sequence) == whole.size
  assert scores[0].windows == len(strided.window_spans(len(rec.sequence), plan)) == 5
  np.testing.assert_allclose(scores[0].log_likelihood, whole.sum(), rtol=1e-12)
