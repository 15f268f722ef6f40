"""A small causal transformer on the embedded synthetic genes.

Command:
  python -m dnagen_jax.main --config=configs/transformer.py --workdir=/tmp/dnagen/transformer

Expected result: test perplexity close to the oracle (about 2.88), given more
steps than the LSTM needs.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = default.get_config()
  config.model.name = "transformer"   # GPT-style causal decoder
  config.model.embed_dim = 64         # model width d
  config.model.num_layers = 2         # decoder blocks
  config.model.num_heads = 2          # attention heads
  config.model.head_dim = 0           # 0 = embed_dim // num_heads
  config.model.mlp_dim = 128          # feed-forward width
  config.model.position_embedding = True  # learned positions
  config.train.max_steps = 3000       # transformers need more steps than the LSTM here
  return config
