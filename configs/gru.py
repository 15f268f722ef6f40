"""A small GRU on the embedded synthetic genes (the default config with GRU cells).

Command:
  python -m dnagen_jax.main --config=configs/gru.py --workdir=/tmp/dnagen/gru

Expected result: test perplexity within a few percent of the oracle (about 2.88).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = default.get_config()
  config.model.name = "gru"   # GRU cells instead of LSTM; all else as the default
  return config
