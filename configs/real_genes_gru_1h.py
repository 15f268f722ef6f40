"""The recipe for real genes on a 2-core CPU: GRU 3 x 256, 24 epochs (about an hour), cosine decay.

`configs/real_genes_gru.py` (about 1.19M parameters: embedding 256, 3 GRU
layers of 256, no position embedding, PyTorch's initialisation, Adam 1e-3,
batch 64 length-sorted genes padded to 16 fitted lengths) trained for 24
epochs, with the learning rate decayed by a cosine from 1e-3 to 1e-4 over
them. Why each choice: docs/training.md, "The real-gene recipe".

Command:
  python -m dnagen_jax.main --config=configs/real_genes_gru_1h.py --workdir=/tmp/dnagen/real_gru_1h \
    --config.data.files=../shared/data/human_genes/genes.csv

Expected result (2-core AMD EPYC, 67 minutes, 3,000 steps, 69.5M nucleotides
at 17,200 real nt/s, compilation and validation included): best validation
perplexity 3.5764 (step 2,961), test perplexity 3.6102 (1.8521 bits/nt) on
genes.csv's default split, 6.0% above the Kneser-Ney 21-gram's 3.4067;
mutation detection (--mode=report, perplexity rule, seeds 0-2) .666 / .754 /
.798 at MAX = 1 / 5 / 10. The curve, next to the PyTorch loop's: docs/training.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import real_genes_gru  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = real_genes_gru.get_config()
  config.train.num_epochs = 24             # about an hour here (3,000 steps); the cosine spans them
  config.train.schedule = "cosine"         # from 1e-3 down to 1e-4 at the last step
  config.train.max_minutes = 90.0          # a cap for slower machines (compilation and validation included)
  config.train.eval_every = 63             # validate twice an epoch (125 steps on the default split)
  config.train.checkpoint_every = 63       # checkpoint as often
  return config
