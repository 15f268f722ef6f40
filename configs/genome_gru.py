"""A GRU on a genome: 1,000-nt windows of E. coli K-12 MG1655, split by hashed 100-kb blocks.

Command (from the project root, where ../shared/data/genomes/ is):
  python -m dnagen_jax.main --config=configs/genome_gru.py --workdir=/tmp/ecoli \\
    --config.data.files=../shared/data/genomes/ecoli_k12_mg1655.fasta.gz
Any FASTA (plain, gzip, bgzip, xz), folder or glob works in data.files;
docs/data.md#genomes-windows says how records become windows and splits.

CPU budget: train.max_minutes = 20 of training on 2 CPU cores (plus about
1 minute of preparation, compilation and test scoring); the run stops at the
budget or at train.max_steps, whichever comes first, and scores the whole
test split (639,675 nt in 7 blocks: every test nucleotide once, each window from BOS).
Expected result: test about 1.95 bits/nt. Measured (2 CPU cores shared with
other jobs, load average about 25): 300 steps (4.8M nucleotides, 1.4 epochs)
in the 20 minutes, validation 1.9529 bits/nt, test 1.9505 bits/nt
(perplexity 3.8651); an idle machine takes more steps in the budget. For
scale: xz -9e stores a bacterial genome at about 2.0 bits/nt, and Kneser-Ney
on the same windows (configs/genome_ngram.py) reaches 1.9488 at order 16.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = default.get_config()
  d = config.data
  d.source = "files"                # read the genome from files ...
  d.files = "../shared/data/genomes/ecoli_k12_mg1655.fasta.gz"  # ... this one, by default (relative to the project root)
  d.unknown_policy = "n"            # IUPAC codes read as N (a genome may hold some)
  d.window = 1000                   # 1,000-nt windows, each fed from BOS like a gene
  d.stride = 1000                   # training windows side by side; each epoch shifts them by a fresh draw
  d.split_by = "blocks"             # hashed blocks: no window crosses a split boundary
  d.block_size = 100_000            # 100-kb blocks: 80/10/10 of about 46 blocks
  d.n_run_cut = 100                 # windows never span 100 N or more (assembly gaps)
  d.max_n_fraction = 0.1            # drop windows more than 10% N
  d.reverse_complement = True       # both strands: half the windows reverse-complemented, drawn per epoch
  d.val_windows = 200               # validate on a fixed 200-window sample (0.2 Mbp): quick validations
  d.length_buckets = (1008,)        # one shape: BOS + 1,000 nucleotides, rounded up to a multiple of 8
  d.sort_noise = 0.0                # windows are all 1,000 nt: nothing to sort

  config.model.name = "gru"         # GRU cells
  config.model.embed_dim = 32       # token embedding width
  config.model.hidden_dim = 256     # GRU units
  config.model.num_layers = 1       # one layer
  config.model.max_len = 1024       # BOS + window fits

  t = config.train
  t.batch_size = 16                 # windows per step (16,000 nucleotides)
  t.num_epochs = 100                # not the limit: max_steps and max_minutes are
  t.max_steps = 1200                # cosine decay over 1,200 steps (about 5 epochs)
  t.learning_rate = 4e-3            # peak Adam learning rate
  t.warmup_steps = 50               # linear warm-up
  t.eval_every = 100                # validation every 100 steps (1.6M nucleotides)
  t.checkpoint_every = 100          # checkpoints as often
  t.patience = 0                    # no early stopping: the time budget ends the run
  t.log_every = 25                  # progress lines
  t.eval_batch_size = 32            # windows per scoring batch
  t.max_minutes = 20.0              # the CPU budget: stop training after 20 minutes and score the test split
  return config
