"""A Kneser-Ney N-gram on a genome: E. coli K-12 MG1655 in 1,000-nt windows, split by hashed 100-kb blocks.

Command (from the project root, where ../shared/data/genomes/ is):
  python -m dnagen_jax.main --config=configs/genome_ngram.py --workdir=/tmp/ecoli_ngram \\
    --config.data.files=../shared/data/genomes/ecoli_k12_mg1655.fasta.gz
The windows and splits are configs/genome_gru.py's (the same prepared data
set), so the two compare on the same test nucleotides.

CPU budget: one counting pass, about 2 minutes on 2 CPU cores (no time limit needed).
Expected result: test 1.9488 bits/nt (perplexity 3.86). Measured on the same
test windows (2 CPU cores shared with other jobs): order 10: 2.0044,
12: 1.9934, 14: 1.9546, 16: 1.9488 (fit 107 s), 20: 1.9413 (fit 165 s);
the long orders find the genome's repeats. The order chosen on validation by
the sweep is 7: --config.model.ngram_order=7 gives 1.9351 (1.9344 scored in
strided windows with --mode=eval; docs/genomes.md). xz -9e stores a bacterial genome
at about 2.0 bits/nt. Other orders: --config.model.ngram_order=N, or
  python -m dnagen_jax.main --mode=sweep --config=configs/genome_ngram.py --workdir=/tmp/ecoli_sweep --max_order=16
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import genome_gru  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = genome_gru.get_config()   # the genome data block (windows, splits) of configs/genome_gru.py
  config.data.reverse_complement = False  # a training-time augmentation of neural batches: N-grams count windows as stored
  config.model.name = "ngram"                    # N-gram family (dnagen_jax.ngram)
  config.model.ngram_order = 16                  # order N: the previous 15 nucleotides
  config.model.ngram_smoothing = "kneser_ney"    # interpolated modified Kneser-Ney
  config.model.ngram_k = 1.0                     # add_k only: unused here
  config.model.ngram_kn_lower_discounts = "auto" # KN discounts below N: chosen on held-out training windows
  config.model.ngram_max_memory_gb = 0.0         # refuse fits estimated above this (0 = available memory)
  return config
