"""The study's Laplace 8-gram (NLTK protocol numbers included) on the real genes.

Command:
  python -m dnagen_jax.main --config=configs/paper_laplace8.py --workdir=/tmp/dnagen/laplace8 \
      --config.data.files=../shared/data/human_genes/genes.csv

Expected result on genes.csv (8,046 train genes, 2.91M nt; 2-core CPU, under a
second to fit after the data set is prepared): test perplexity 3.7675 in the
project protocol, 3.8816 in the study's NLTK protocol (results.json:
nltk_test_perplexity). The study reports 3.826 on its own, different test split.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = default.get_config()
  config.data.source = "files"                 # the study's CSV format (or FASTA)
  config.data.files = ""                       # set with --config.data.files=PATH (CSV/FASTA, comma-separated)
  config.data.max_length = 1000                # the study kept genes of at most 1000 nt
  config.model.name = "ngram"                  # N-gram family (dnagen_jax.ngram)
  config.model.ngram_order = 8                 # the study's best Laplace order
  config.model.ngram_smoothing = "laplace"     # add-one; NLTK's Laplace in the NLTK protocol
  config.model.ngram_k = 1.0                   # unused by laplace (k is 1)
  config.model.ngram_kn_lower_discounts = ""   # unused by laplace
  config.model.ngram_max_memory_gb = 0.0       # refuse fits estimated above this (0 = available memory)
  return config
