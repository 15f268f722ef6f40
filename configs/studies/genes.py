r"""Data-scaling study on genes.csv: does a k-mer vocabulary make models less data-hungry?

Command (from the project root, where ../shared/data/human_genes/genes.csv is):
  python -m dnagen_jax.main --mode=study --config=configs/studies/genes.py --workdir=/tmp/dnagen/study_genes
One point per cluster job: add --dry_run to print each point's command.

Curves: Kneser-Ney N-grams at their best order on validation, on nucleotides,
3-mers and 6-mers, and a small LSTM (1 x 128) on nucleotides and 3-mers with
the same fixed budget of 1.5M training nucleotides per point (tested at its
best validation checkpoint), over 6 nested sizes from 1% to 100% of
the train split (2.91M nucleotides). Expected result (measured on 2 shared CPU
cores, 19 minutes of point wall time; docs/studies.md): at 100% KN reaches
1.7684 bits/nt on nucleotides (N=21), 1.8083 on 3-mers (N=7), 1.8463 on
6-mers (N=3); reaching 1.85 bits/nt takes about 2x the data with 3-mers and
7x with 6-mers. The LSTM at this budget: 1.921-1.925 on nucleotides at every
size, 3-mers 1.998 at 1% down to 1.910 at 100%.
"""

import ml_collections

# Orders tried per N-gram point; only those with order x k <= 21 nucleotides fit the codes
# (6-mers: 1..3, 3-mers: 1..7, nucleotides: all).
_ORDERS = (1, 2, 3, 4, 5, 6, 7, 9, 12, 16, 21)


def get_config():
  study = ml_collections.ConfigDict()
  study.name = "genes"                     # the study's name: a study workdir holds one study
  study.data = ml_collections.ConfigDict()  # overrides of config.data for every family
  study.data.source = "files"              # read genes from files ...
  study.data.files = "../shared/data/human_genes/genes.csv"  # ... this one (relative to the project root)
  study.fractions = (0.01, 0.03, 0.1, 0.3, 0.6, 1.0)  # nested shares of the train split's nucleotides
  study.nucleotides = ()                   # or sizes in nucleotides (give exactly one of the two)
  study.target_losses = (1.95, 1.9, 1.85)  # bits/nt for the data-needed table
  study.bootstrap = 200                    # bootstrap replicates per fit
  study.fit_seed = 0                       # seed of the bootstrap

  study.families = ml_collections.ConfigDict()
  study.families.kn = dict(                # interpolated Kneser-Ney, best order on validation
      config="configs/ngram.py",           # base config file
      overrides={},                        # nested {block: {field: value}} over the base config
      kmers=(1, 3, 6),                     # tokenizations: nucleotides, 3-mers, 6-mers
      seeds=(0,),                          # an N-gram fit has no randomness: one seed
      budget="",                           # N-grams count everything once: no budget
      ngram_orders=_ORDERS,                # fit each order that fits, keep the best on validation
  )
  study.families.lstm = dict(              # small LSTM, a fixed budget of training nucleotides per point
      config="configs/default.py",
      overrides={"model": {"hidden_dim": 128, "embed_dim": 32},
                 "data": {"num_buckets": 4},
                 "train": {"eval_every": 50, "checkpoint_every": 100, "log_every": 50,
                           "warmup_steps": 20}},
      kmers=(1, 3),
      seeds=(0,),
      budget="nucleotides:1500000",        # the same 1.5M training nucleotides at every size
      ngram_orders=(),
  )
  return study
