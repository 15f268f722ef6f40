"""Unbounded-order N-gram (infinigram) over a suffix array, on the embedded synthetic genes.

Orders 1..21 are the Kneser-Ney 21-gram's (its 'auto' discounts), every
context reaches BOS once, and the longest context of each position seen in
training adds one raw-count order above 21 (docs/infinigram.md).

Command:
  python -m dnagen_jax.main --config=configs/infinigram.py --workdir=/tmp/dnagen/infinigram

On real genes (the figure in docs/infinigram.md):
  python -m dnagen_jax.main --config=configs/infinigram.py --workdir=/tmp/dnagen/infinigram_genes \\
    --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv

Expected result on genes.csv (default split, 8,046 train genes, 2.91M nt; 2-core CPU):
validation perplexity 3.3833, test perplexity 3.3859 (the Kneser-Ney 21-gram:
3.4067), fit 12.5 s (the suffix array itself 0.65 s), peak memory 1.33 GB RSS
(the discount search's half-size 21-gram; the index is 103 MiB).
On the synthetic default (order-3 Markov genes, 8 s): test 3.2331 (oracle 2.8829;
the KN 21-gram 3.2406): long contexts carry nothing there; with
--config.model.infinigram_raw_from=6 it is 2.8991 (the KN 6-gram: 2.8861).
With --config.model.infinigram_max_order=N (N <= 21) it is exactly the
Kneser-Ney N-gram (same counts, same probabilities).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = default.get_config()
  config.model.name = "infinigram"             # unbounded-order N-gram (dnagen_jax.ngram.infinigram)
  config.model.infinigram_max_order = 0        # order cap N (0 = none); N <= 21 gives exactly the KN N-gram
  config.model.infinigram_raw_from = 21        # R: orders 1..R are the KN R-gram's; raw counts from R up
  config.model.infinigram_above = "longest"    # above R: 'longest' (the longest match only), 'branching' or 'none'
  config.model.ngram_kn_lower_discounts = "auto"  # discounts below R, as for the KN N-gram: "auto", "" or "D1,D2,D3"
  return config
