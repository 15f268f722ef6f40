r"""Known truth for L(N, D): size ladders of LSTMs and transformers crossed with nested data sizes.

The synthetic source's entropy rate is known, so the L(N, D) = E + A N^-alpha +
B D^-beta fit (docs/studies.md, "Scaling in model size and compute") can be
checked: its E must land on the oracle's test bits per nucleotide. Every size
trains on every nested fraction of the train split for 4000 steps of cosine
decay and is tested with its best checkpoint by validation (every 100 steps),
so each point is as good as its N and its D allow; D is the subset's
nucleotides. The source is the order-2 chain (its next base depends
on the two before), genes of at most 64 nucleotides: one attention layer can
reach it, which keeps the transformer ladder small enough for a CPU.
configs/studies/synthetic_ladder.py asks the other question, IsoFLOP budgets.

Command:
  python -m dnagen_jax.main --mode=study --config=configs/studies/synthetic_grid.py --workdir=/tmp/dnagen/grid

Expected result (measured, docs/studies.md "Known truth: sizes x data
sizes"; 28 points, 33 minutes of point wall time on 2 cores shared with other
jobs): oracle 1.4426 bits/nt; LSTM E = 1.4424 [1.4419, 1.4431] (-0.01%),
transformer E = 1.4225 [1.3845, 1.4600] (-1.39%); both intervals hold the
oracle. tests/test_scaling.py::test_synthetic_ladders_find_the_oracle runs a
smaller copy (-m slow).
"""

import ml_collections


def get_config():
  study = ml_collections.ConfigDict()
  study.name = "synthetic-grid"           # the study's name: a study workdir holds one study
  study.data = ml_collections.ConfigDict()  # overrides of config.data for every family (default: the synthetic source)
  study.data.synthetic_order = 2          # the order-2 chain: 25 contexts (BOS included)
  study.data.synthetic_sizes = (2000, 300, 600)  # genes in train / validation / test
  study.data.max_length = 64              # genes clipped at 64 nucleotides
  study.data.length_buckets = (65,)       # one padded length (BOS + 64): one compiled program per model
  study.fractions = (0.125, 0.25, 0.5, 1.0)  # data sizes: nested fractions of the train split's nucleotides
  study.nucleotides = ()                  # (... or nucleotide counts)
  study.target_losses = ()                # (the data-needed table of the L(D) fits: none here)
  study.bootstrap = 200                   # bootstrap replicates per fit (confidence intervals)
  study.fit_seed = 0                      # seed of the bootstrap

  # every point: 16 genes a step, 4000 steps of cosine decay to 10% (no early stop: stopping while the
  # rate is high leaves a floor that more data does not lower), tested with its best validation checkpoint
  train = {"batch_size": 16, "eval_every": 100, "checkpoint_every": 10**6, "log_every": 10**6,
           "warmup_steps": 20, "learning_rate": 6e-3, "max_steps": 4000, "schedule": "cosine",
           "num_epochs": 10**6, "patience": 0}
  study.families = ml_collections.ConfigDict()
  study.families.lstm = dict(             # one-layer LSTMs, embedding 8
      config="configs/default.py",        # base config file
      overrides={"model": {"embed_dim": 8, "max_len": 65}, "train": train},  # over the base config
      sizes={                             # the ladder: label -> overrides (sorted by parameters in tables)
          "h4": {"model": {"hidden_dim": 4}},
          "h8": {"model": {"hidden_dim": 8}},
          "h16": {"model": {"hidden_dim": 16}},
          "h32": {"model": {"hidden_dim": 32}},
      },
      kmers=(1,),                         # tokenizations: nucleotides
      seeds=(0,),                         # training seeds per point
      budget="",                          # the steps above (train.max_steps) for every point
      ngram_orders=(),                    # (N-gram families only)
  )
  study.families.transformer = dict(      # one-layer pre-LN causal transformers, 2 heads, MLP 2 x width
      config="configs/transformer.py",
      overrides={"model": {"num_heads": 2, "max_len": 65}, "train": train},
      sizes={
          "d4": {"model": {"embed_dim": 4, "mlp_dim": 8, "num_layers": 1}},
          "d8": {"model": {"embed_dim": 8, "mlp_dim": 16, "num_layers": 1}},
          "d16": {"model": {"embed_dim": 16, "mlp_dim": 32, "num_layers": 1}},
      },
      kmers=(1,), seeds=(0,), budget="", ngram_orders=(),
  )
  return study
