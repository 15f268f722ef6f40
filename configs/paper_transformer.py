"""The study's transformer, exactly: GPT-style decoder, 4 layers, 3 heads, d 256, feed-forward 256.

ReLU, learned positions, no dropout; heads of 85 dims (3 x 85 = 255 inside
attention, as Keras' key_dim = 256 // 3 gives). About 1.8M parameters.
Training as in the study: Adam lr 1e-3, batch 64, up to 40 epochs, early
stopping with patience 5.

Command:
  python -m dnagen_jax.main --config=configs/paper_transformer.py --workdir=/tmp/dnagen/paper_tf \
    --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv

Expected result: the study reports test perplexity 3.691 after full training
on its 13.4M-nt training set; see README for what this machine reaches.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import paper_lstm  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = paper_lstm.get_config()        # same training protocol as the study's LSTM
  config.model.name = "transformer"       # GPT-style causal decoder
  config.model.embed_dim = 256            # model width d
  config.model.num_layers = 4             # decoder blocks
  config.model.num_heads = 3              # attention heads
  config.model.head_dim = 85              # per-head width (256 // 3)
  config.model.mlp_dim = 256              # feed-forward width
  config.model.position_embedding = True  # learned positions (always on for the transformer)
  config.model.transformer_init = "pytorch"  # nn.Linear/nn.Embedding's draws: at this width they learn more per nucleotide than Flax's (docs/training.md)
  return config
