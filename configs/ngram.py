"""N-gram (interpolated modified Kneser-Ney, order 6) on the embedded synthetic genes.

Command:
  python -m dnagen_jax.main --config=configs/ngram.py --workdir=/tmp/dnagen/ngram

Expected result (2-core CPU, a few seconds after the data set is prepared):
test perplexity 2.8861 against the oracle's 2.8829 (0.1% above it).

Variants on the command line, e.g. the study's real genes and Laplace:
  --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv \
  --config.model.ngram_smoothing=laplace --config.model.ngram_order=8
The best N-gram on genes.csv (test 3.4067 with the default 'auto' discounts,
chosen on held-out training genes; Laplace's best is 3.5827 at N=13):
  --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv \
  --config.model.ngram_order=21
Order sweep (see docs/ngram.md):
  python -m dnagen_jax.main --mode=sweep --config=configs/ngram.py --workdir=/tmp/dnagen/sweep --max_order=12
"""

import os
import sys

# The configs directory is not a package; make `configs.default` importable
# when this file is loaded by path (config_flags) from any working directory.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = default.get_config()
  config.model.name = "ngram"                  # N-gram family (dnagen_jax.ngram)
  config.model.ngram_order = 6                 # order N: the context is the previous N-1 symbols (BOS-padded)
  config.model.ngram_smoothing = "kneser_ney"  # 'mle', 'laplace', 'add_k', 'kneser_ney' or 'witten_bell'
  config.model.ngram_k = 1.0                   # add_k: pseudo-count per outcome
  config.model.ngram_kn_lower_discounts = "auto"  # kneser_ney below N: "auto" (chosen on held-out training genes), "" (closed form) or "D1,D2,D3"
  config.model.ngram_max_memory_gb = 0.0       # refuse fits estimated above this (0 = the machine's available memory)
  return config
