"""The study's LSTM, exactly: embedding 256 (+ learned positions), 4 LSTM layers of 512.

About 8.1M parameters. Training as in the study: Adam lr 1e-3 (constant),
batch 64, up to 40 epochs, early stopping on validation loss with patience 5.

Command (the study's genes; see README for the data):
  python -m dnagen_jax.main --config=configs/paper_lstm.py --workdir=/tmp/dnagen/paper_lstm \
    --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv

Expected result: the study reports test perplexity 3.288 on its 13.4M-nt
training set after up to 40 epochs on a GPU; on a 2-core CPU one epoch of
genes.csv takes hours (see README's figures), so compare against its numbers
only after a full run on an accelerator.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = default.get_config()
  config.model.name = "lstm"               # the study's recurrent model
  config.model.embed_dim = 256             # token and position embedding width
  config.model.hidden_dim = 512            # LSTM units per layer
  config.model.num_layers = 4              # stacked LSTM layers
  config.model.position_embedding = True   # the study added learned positions to the tokens
  config.train.batch_size = 64             # the study's batch size
  config.train.learning_rate = 1e-3        # the study's Adam learning rate
  config.train.schedule = "constant"       # the study used no decay
  config.train.warmup_steps = 0            # no warm-up in the study (1 would spend the first step at rate 0)
  config.train.grad_clip = 0.0             # no clipping in the study
  config.train.num_epochs = 40             # the study's epoch limit
  config.train.max_steps = 0               # no step limit: epochs and early stopping decide
  config.train.patience = 5                # early stopping patience (validations)
  config.train.eval_every = 500            # validate every 500 steps (about one epoch of the study's data at batch 64 is 570)
  config.train.checkpoint_every = 100      # checkpoints often: steps are slow on CPU
  config.train.log_every = 10              # progress every 10 steps
  config.data.length_buckets = (1024,)     # the longest batch: BOS + 1023 nucleotides, as in the study
  config.data.num_buckets = 16             # 16 batch lengths fitted to the genes: ~8% padding on genes.csv, 16 compilations
  return config
