"""The NLTK-protocol N-grams agree with NLTK itself on real genes (1e-9 relative)."""

import math

import pytest

from dnagen_jax.data import sequence_io
from dnagen_jax.ngram import nltk_compat

nltk_lm = pytest.importorskip("nltk.lm")
from nltk.util import ngrams  # pylint: disable=g-import-not-at-top,wrong-import-position


def nltk_perplexity(train, test, n, cls):
  """NLTK as the study used it (docs/ngram.md, the NLTK protocol): order-n windows only."""
  pad = dict(pad_left=n > 1, pad_right=n > 1, left_pad_symbol="<s>", right_pad_symbol="</s>")
  train_windows = [list(ngrams(g, n, **pad)) for g in train]
  vocab_text = [t for g in train for t in (["<s>"] * (n - 1) + list(g) + ["</s>"] * (n - 1)
                                           if n > 1 else list(g))]
  lm = cls(n)
  lm.fit(train_windows, vocabulary_text=vocab_text)
  scored = []
  for g in test:
    w = list(ngrams(g, n, **pad))
    scored.extend(w[:len(w) - (n - 2)] if n > 2 else w)
  return lm.perplexity(scored)


@pytest.fixture(scope="module")
def genes(genes_csv):
  recs = sequence_io.read_sequences(genes_csv)
  seqs = [r.sequence for r in recs if len(r.sequence) <= 1000]
  return seqs[:100], seqs[100:130]


@pytest.mark.parametrize("smoothing,orders", [("mle", range(1, 7)), ("laplace", range(1, 9))])
def test_matches_nltk(genes, smoothing, orders):
  train, test = genes
  cls = nltk_lm.MLE if smoothing == "mle" else nltk_lm.Laplace
  finite = 0
  for n in orders:
    want = nltk_perplexity(train, test, n, cls)
    got = nltk_compat.perplexity(train, test, n, smoothing)
    if math.isinf(want):
      assert math.isinf(got), (n, got)
    else:
      finite += 1
      assert got == pytest.approx(want, rel=1e-9, abs=0), (smoothing, n)
  assert finite >= 2


def test_lidstone_and_unknown_symbol_match_nltk(genes):
  """add_k is NLTK's Lidstone; an N never seen in training is NLTK's <UNK>."""
  train, test = genes
  test = [test[0][:50] + "N" + test[0][51:]] + test[1:10]
  for n in (1, 3):
    lm_cls = lambda order: nltk_lm.Lidstone(0.1, order)  # pylint: disable=unnecessary-lambda-assignment
    want = nltk_perplexity(train[:50], test, n, lm_cls)
    got = nltk_compat.perplexity(train[:50], test, n, "add_k", k=0.1)
    assert got == pytest.approx(want, rel=1e-9, abs=0)
