"""A recurrent model for real genes on a 2-core CPU: GRU 3 x 256, 30 minutes of training.

About 1.19M parameters: embedding 256, 3 GRU layers of 256, no position
embedding, PyTorch's initialisation, Adam 1e-3 constant, batch 64
length-sorted genes padded to 16 fitted lengths. Chosen by the loop benchmark
(docs/training.md): after one epoch of genes.csv the GRU 3 x 256 reached
validation perplexity 3.779 against the LSTM 3 x 256's 3.842 at the same
speed, and the transformer is slower per nucleotide here. Sizes, learning
rate and schedule are not tuned further.

Command:
  python -m dnagen_jax.main --config=configs/real_genes_gru.py --workdir=/tmp/dnagen/real_gru \
    --config.data.files=../shared/data/human_genes/genes.csv

Expected result (2-core AMD EPYC, 30 minutes, 860 steps = 6.9 epochs, 19.9M
nucleotides): validation perplexity 3.7438, test perplexity 3.7488 on
genes.csv's default split, 10.0% above the Kneser-Ney 21-gram's 3.4067 on
the same split; still falling slowly (docs/training.md has the curve).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import paper_lstm  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = paper_lstm.get_config()
  config.model.name = "gru"                # GRU cells: learned more per epoch than the LSTM here
  config.data.source = "files"             # real genes: give --config.data.files=PATH (CSV or FASTA)
  config.model.hidden_dim = 256            # GRU units per layer
  config.model.num_layers = 3              # stacked GRU layers
  config.model.position_embedding = False  # no learned positions
  config.train.max_minutes = 30.0          # wall-time budget (compilation and validation included)
  config.train.patience = 0                # no early stopping: the budget decides
  config.train.eval_every = 60             # validate about twice an epoch
  config.train.checkpoint_every = 60       # checkpoint as often
  return config
