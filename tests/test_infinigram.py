"""The infinigram: counts against brute force and against the N-gram family, normalisation, storage."""

import json
import os

import numpy as np
import pytest

from configs import infinigram as infinigram_config
from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.ngram import codes as C
from dnagen_jax.ngram import infinigram as I
from dnagen_jax.ngram.infinigram import InfiniGram
from dnagen_jax.ngram.model import NGramModel
from dnagen_jax.ngram.suffix_array import SuffixIndex
from dnagen_jax.workdir import load_scorer

SYM = {tokens.BOS: "^", tokens.A: "A", tokens.C: "C", tokens.G: "G", tokens.T: "T", tokens.N: "N"}


def genes(rng, n, lo=1, hi=25, alphabet="ACGT"):
  return ["".join(rng.choice(list(alphabet), rng.integers(lo, hi + 1))) for _ in range(n)]


def repetitive(rng, n):
  """Genes sharing long pieces (paralog-like), so that matches run long."""
  base = "".join(rng.choice(list("ACGT"), 40))
  out = []
  for _ in range(n):
    g = list(base[rng.integers(0, 10):rng.integers(25, 41)])
    for i in rng.integers(0, len(g), 2):
      g[i] = rng.choice(list("ACGT"))
    out.append("".join(g))
  return out


def all_levels(index, seqs, cap=0, with_n=False):
  """{(position, depth): (raw [O], cont [O], at_bos)} from context_levels."""
  stream, pos, t = I.positions(seqs)
  out = {}
  for j, idx, raw, cont, at_bos in I.context_levels(index, stream, pos, t, I.outcome_ids(with_n), cap):
    for r, i in enumerate(idx):
      out[(int(i), j)] = (raw[r], cont[r], bool(at_bos[r]))
  return out, stream, pos, t


def brute(train, context: str, w: str):
  """Raw count of context+w in '^' + gene (no crossing), and its distinct left neighbours."""
  pat, raw, left = context + w, 0, set()
  for g in train:
    s = "^" + g
    for i in range(len(s) - len(pat) + 1):
      if s[i:i + len(pat)] == pat:
        raw += 1
        if i > 0:
          left.add(s[i - 1])
  return raw, len(left)


@pytest.mark.parametrize("maker", [genes, repetitive])
def test_counts_equal_brute_force_for_every_context(maker):
  rng = np.random.default_rng(1)
  train, test = maker(rng, 30), maker(rng, 6)
  index = SuffixIndex.build(train)
  levels, stream, pos, t = all_levels(index, test)
  hist = "".join(SYM[int(x)] for x in stream)
  checked = 0
  for p in range(pos.size):
    for j in range(int(t[p]) + 1):
      ctx = hist[pos[p] - j:pos[p]]
      expect = [brute(train, ctx, w) for w in "ACGT"]
      if sum(r for r, _ in expect) == 0:  # unseen: that depth and all deeper are absent
        assert (p, j) not in levels and (p, j + 1) not in levels
        break
      raw, cont, at_bos = levels[(p, j)]
      assert raw.tolist() == [r for r, _ in expect], (ctx, p, j)
      if not ctx.startswith("^"):  # (after BOS the counts used are raw)
        assert cont.tolist() == [c for _, c in expect], (ctx, p, j)
      assert at_bos == ctx.startswith("^")
      checked += 1
  assert checked > 5 * len(test)


def test_no_match_crosses_a_gene_boundary():
  index = SuffixIndex.build(["AAAA", "CCCC"])
  levels, _, _, _ = all_levels(index, ["AAAACCCC"])
  # Position 5 (the first C), context 'A': A follows A 3 times, C never (only across the boundary).
  assert levels[(4, 0)][0].tolist() == [4, 4, 0, 0]
  assert levels[(4, 1)][0].tolist() == [3, 0, 0, 0]
  assert levels[(4, 3)][0].tolist() == [1, 0, 0, 0] and (4, 4) not in levels  # 'AAAA' ends its gene
  # Position 6, context 'AC' (..AAAAC): never seen in either gene.
  assert (5, 1) in levels and (5, 2) not in levels


@pytest.mark.parametrize("n", [1, 2, 3, 6, 21])
def test_capped_counts_and_probabilities_equal_the_ngram_family(n):
  rng = np.random.default_rng(n)
  train, test = repetitive(rng, 25) + genes(rng, 15), genes(rng, 5) + repetitive(rng, 5)
  ref = NGramModel.fit(train, n, "kneser_ney", lower_discounts="0.6,1.1,1.7")
  model = InfiniGram.fit(train, cap=n, lower_discounts="0.6,1.1,1.7")
  # Counts: the counts each order uses are NGramModel's level tables, looked up by code.
  levels, stream, pos, t = all_levels(model.index, test, cap=n)
  padded, starts = C.padded_stream(test, n - 1, 0)
  lengths = np.array([len(s) for s in test])
  win = C.window_codes(padded, n, C.ranges(starts, lengths))  # [P] order-n windows ending at x_t
  for (p, j), (raw, cont, at_bos) in levels.items():
    k = j + 1
    lv = ref.levels[k]
    for o, w in enumerate(range(tokens.A, tokens.T + 1)):
      code = ((win[p] >> np.uint64(C.BITS)) << np.uint64(C.BITS) | np.uint64(w)) & C.mask(k)
      want = int(C.lookup(lv.keys, lv.counts, np.array([code]))[0])
      got = raw[o] if (k == n or at_bos) else cont[o]
      assert got == want, (p, j, o)
  # Probabilities: the same discounts give the same model.
  assert np.allclose(model.discounts, [ref.levels[k].discounts for k in range(1, n + 1)], atol=0, rtol=0)
  ours = np.concatenate(model.log_probs(test))
  theirs = np.concatenate(ref.log_probs(test))
  assert np.max(np.abs(ours - theirs)) < 1e-12


@pytest.mark.parametrize("above", ["longest", "branching", "none"])
@pytest.mark.parametrize("with_n", [False, True])
def test_every_distribution_sums_to_one(above, with_n):
  rng = np.random.default_rng(3)
  alphabet = "ACGTN" if with_n else "ACGT"
  train = repetitive(rng, 30) + genes(rng, 10, alphabet=alphabet)
  model = InfiniGram.fit(train, cap=0, raw_from=3, above=above, with_n=with_n)
  probs, _, longest = model.distributions(repetitive(rng, 8) + genes(rng, 8, alphabet=alphabet))
  assert np.all(probs > 0)
  assert np.max(np.abs(probs.sum(1) - 1)) < 1e-12
  assert longest.max() > 3  # some contexts run past R
  nxt = model.next_log_probs(["", "ACG", train[0][:7]])
  assert nxt.shape == (3, len(alphabet)) and np.max(np.abs(np.exp(nxt).sum(1) - 1)) < 1e-12


def test_longer_matches_help_on_repeats_and_save_load_round_trips(tmp_path):
  rng = np.random.default_rng(4)
  bases = genes(rng, 6, 80, 80)
  train, test = [b for b in bases for _ in range(3)], bases  # each test gene 3 times in training
  capped = InfiniGram.fit(train, cap=4, lower_discounts="0.6,1.1,1.7")
  unbounded = InfiniGram.fit(train, cap=0, raw_from=4, lower_discounts="0.6,1.1,1.7")
  ppl = lambda m: float(np.exp(-np.concatenate(m.log_probs(test)).mean()))
  assert ppl(unbounded) < ppl(capped)
  assert unbounded.discount_search["above_top"]["heldout_genes"] == 9
  unbounded.save(str(tmp_path))
  again = InfiniGram.load(str(tmp_path))
  assert np.array_equal(np.concatenate(again.log_probs(test)), np.concatenate(unbounded.log_probs(test)))
  header = json.load(open(tmp_path / "infinigram.json"))
  assert header["format"] == "dnagen_jax.infinigram" and header["cap"] == 0
  assert np.load(tmp_path / "infinigram_sa.npy").dtype == np.int32


def test_bad_input_is_one_line(tmp_path):
  with pytest.raises(UserError, match="infinigram_max_order"):
    InfiniGram.fit(["ACGT"], cap=-1)
  with pytest.raises(UserError, match="infinigram_raw_from"):
    InfiniGram.fit(["ACGT"], raw_from=30)
  with pytest.raises(UserError, match="no training nucleotides"):
    InfiniGram.fit([""])
  with pytest.raises(UserError, match="holds N"):
    InfiniGram.fit(["ACGNT", "ACGT"])
  model = InfiniGram.fit(["ACGT", "ACGA"])
  with pytest.raises(UserError, match="holds N"):
    model.log_probs(["ANA"])
  with pytest.raises(UserError, match="no saved infinigram"):
    InfiniGram.load(str(tmp_path))


def test_train_and_evaluate_and_load_scorer(tfds_dir, tmp_path):
  from dnagen_jax.training import trainer  # pylint: disable=g-import-not-at-top
  config = infinigram_config.get_config()
  config.data.data_dir = tfds_dir
  config.data.synthetic_sizes = (64, 16, 16)
  config.data.max_length = 120
  config.model.infinigram_raw_from = 4
  workdir = str(tmp_path / "ig")
  results = trainer.train_and_evaluate(config, workdir)
  saved = json.load(open(os.path.join(workdir, "results.json")))
  for key in ("val_perplexity", "test_perplexity", "fit_seconds", "build_seconds",
              "peak_rss_bytes", "test_mean_longest_match", "score_nucleotides_per_s"):
    assert key in saved, key
  assert saved["model"] == "infinigram-kn-inf"
  # 64 train genes of the order-3 source: within 5% of its oracle (measured +2.8%); uniform ACGT is 4.0.
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  oracle = storage.oracle_perplexity(config.data, "test")
  assert oracle < saved["test_perplexity"] < 1.05 * oracle
  scorer = load_scorer(workdir)
  from dnagen_jax.ngram import train as ngram_train  # pylint: disable=g-import-not-at-top
  test = ngram_train.load_splits(config)["test"]
  assert scorer.perplexity(test)["perplexity"] == pytest.approx(results["test_perplexity"], rel=1e-12)


def test_config_fields_are_checked():
  from dnagen_jax import config_check  # pylint: disable=g-import-not-at-top
  for field, value, message in (("infinigram_max_order", -2, "infinigram_max_order"),
                                ("infinigram_raw_from", 22, "infinigram_raw_from"),
                                ("infinigram_above", "all", "infinigram_above")):
    config = infinigram_config.get_config()
    config.model[field] = value
    with pytest.raises(UserError, match=message):
      config_check.validate(config)
  config = infinigram_config.get_config()
  config.data.kmer = 3
  with pytest.raises(UserError, match="the infinigram reads nucleotides only"):
    config_check.validate(config)
  config_check.validate(infinigram_config.get_config())


@pytest.mark.slow
def test_real_genes_beat_the_kneser_ney_21_gram(genes_csv):
  from dnagen_jax.ngram.bench import csv_splits  # pylint: disable=g-import-not-at-top
  sp = csv_splits(genes_csv)
  model = InfiniGram.fit(sp["train"])
  test = float(np.exp(-np.concatenate(model.log_probs(sp["test"])).mean()))
  capped = InfiniGram.fit(sp["train"], cap=21)
  kn21 = float(np.exp(-np.concatenate(capped.log_probs(sp["test"])).mean()))
  assert test < kn21 - 0.015 and abs(kn21 - 3.4067) < 0.002
