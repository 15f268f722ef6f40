r"""Data-scaling study on the embedded synthetic genes, whose entropy rate is known.

Command:
  python -m dnagen_jax.main --mode=study --config=configs/studies/synthetic.py --workdir=/tmp/dnagen/study_synthetic

Expected result (measured, docs/studies.md): every fitted irreducible loss E
lies within 2% of the oracle's test bits per nucleotide (1.5275 = log2 2.8829):
KN on nucleotides 1.5275 [1.5272, 1.5276] (its interval contains the oracle;
tests/test_study.py checks this on a kn family alone), KN on 3-mers 1.5235,
Laplace N=4 1.5277, the LSTM 1.5320 (+0.29%, the floor of its 800-step cap).
Points: 8 sizes (1/128 .. all of the 1.76M training nucleotides) x 4 curves;
N-gram points take seconds, LSTM points 1.5-3 minutes on 2 shared CPU cores.
Only the N-gram families: --config.families=... is awkward on the command line;
copy this file and delete the lstm entry instead.
"""

import ml_collections


def get_config():
  study = ml_collections.ConfigDict()
  study.name = "synthetic"                # the study's name: a study workdir holds one study
  study.data = ml_collections.ConfigDict()  # overrides of config.data for every family (default: the synthetic source)
  study.fractions = tuple(2.0 ** -i for i in range(7, -1, -1))  # training sizes: fractions of the train split's nucleotides, nested
  study.nucleotides = ()                  # ... or sizes in nucleotides (give exactly one of the two)
  study.target_losses = (1.535, 1.53)     # bits/nt for the data-needed table (the oracle: 1.5275)
  study.bootstrap = 200                   # bootstrap replicates per fit (confidence intervals)
  study.fit_seed = 0                      # seed of the bootstrap

  study.families = ml_collections.ConfigDict()
  study.families.kn = dict(               # interpolated Kneser-Ney N-gram, its best order on validation
      config="configs/ngram.py",          # base config file
      overrides={},                       # nested {block: {field: value}} over the base config
      kmers=(1, 3),                       # tokenizations: 1 = nucleotides, 2..6 = k-mers
      seeds=(0,),                         # training seeds per point (an N-gram fit has no randomness)
      budget="",                          # '' (base config), 'epochs:N', 'nucleotides:N' or 'patience:N'
      ngram_orders=(1, 2, 3, 4, 5, 6, 8),  # fit each order that fits the codes (3-mers: <= 7), keep the best on validation
  )
  study.families.laplace4 = dict(         # Laplace (add-one) N-gram at the source's context length
      config="configs/ngram.py",
      overrides={"model": {"ngram_smoothing": "laplace", "ngram_order": 4}},
      kmers=(1,), seeds=(0,), budget="", ngram_orders=(),
  )
  study.families.lstm = dict(             # LSTM 1 x 128 (configs/default.py), early stopping on validation
      config="configs/default.py",
      overrides={"train": {"eval_every": 50, "max_steps": 800, "schedule": "constant",
                           "checkpoint_every": 100}},
      kmers=(1,), seeds=(0,), budget="patience:3", ngram_orders=(),
  )
  return study
