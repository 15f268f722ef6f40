"""Kneser-Ney's 'auto' discounts never give an outcome probability 0 (N in a genome's test split only)."""

import numpy as np

from dnagen_jax.ngram import model as ngram_model
from dnagen_jax.ngram.model import NGramModel


def test_n_unseen_in_training_keeps_a_finite_probability():
  rng = np.random.default_rng(0)
  train = ["".join(rng.choice(list("ACGT"), 3000)) for _ in range(8)]  # no N at all
  model = NGramModel.fit(train, 2, "kneser_ney", with_n=True)  # N is an outcome (unknown_policy='n')
  lp = model.log_probs(["ACGTNACGT" * 20])[0]
  assert np.all(np.isfinite(lp))
  assert lp[4] < np.log(0.01)  # N is still very unlikely
  assert min(model.discount_search["scales"]) >= ngram_model.MIN_SCALE
