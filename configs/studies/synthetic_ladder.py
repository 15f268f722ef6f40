r"""IsoFLOP ladders of LSTMs and transformers on the synthetic source, whose entropy rate is known.

Command:
  python -m dnagen_jax.main --mode=study --config=configs/studies/synthetic_ladder.py --workdir=/tmp/dnagen/ladder
  ... --dry_run   every point's command, the study's FLOPs and its estimated time here

Each of 3 compute budgets (2e9, 7e9, 2e10 training FLOPs) is spent by every
size of each ladder (LSTMs h16/h32/h64; transformers d16, d32 of 1 layer, d48
of 2 layers) on the whole train split, for as many steps as the budget pays
for. The fits: L(N, D) = E + A N^-alpha + B D^-beta per family (D = training
nucleotides seen) and, from the IsoFLOP minima, N_opt(C) and D_opt(C). Genes
are cut at 100 nucleotides (data.max_length), which keeps the transformers'
attention term small. Measured (docs/studies.md "Results on this machine";
18 points, 72 minutes of point wall time on 2 heavily shared cores): oracle
1.5375 bits/nt; best points 1.6962 (LSTM h16 at 2e10) and 1.9600
(transformer d16); fitted E 1.5695 [1.4553, 1.6609] for the transformer
(+2.08%), 1.1182 [0.0014, 1.5424] for the LSTM (unresolved): these budgets
are too small for E to land within 2%.
"""

import ml_collections


def get_config():
  study = ml_collections.ConfigDict()
  study.name = "synthetic-ladder"         # the study's name: a study workdir holds one study
  study.data = ml_collections.ConfigDict()  # overrides of config.data for every family (default: the synthetic source)
  study.data.max_length = 100             # genes of at most 100 nucleotides (the source's are clipped there)
  study.data.length_buckets = (128,)      # one padded length: one compiled program per model
  study.fractions = ()                    # (a data-size study: fractions of the train split)
  study.nucleotides = ()                  # (... or nucleotide counts)
  study.budgets = (2e9, 7e9, 2e10)        # IsoFLOP budgets: training FLOPs each size spends
  study.optimal_budgets = (1e11, 1e12)    # compute-optimal N and D tabulated at these budgets
  study.target_losses = ()                # (the data-needed table of the L(D) fits: none here)
  study.bootstrap = 200                   # bootstrap replicates per fit (confidence intervals)
  study.fit_seed = 0                      # seed of the bootstrap

  # every point: 64 genes a step, validation only at its last step (no early stopping in an IsoFLOP profile)
  train = {"batch_size": 64, "eval_every": 10**6, "checkpoint_every": 500, "log_every": 200,
           "warmup_steps": 20}
  study.families = ml_collections.ConfigDict()
  study.families.lstm = dict(             # one-layer LSTMs, embedding 16
      config="configs/default.py",        # base config file
      overrides={"model": {"embed_dim": 16, "max_len": 128}, "train": train},  # over the base config
      sizes={                             # the ladder: label -> overrides (sorted by parameters in tables)
          "h16": {"model": {"hidden_dim": 16}},
          "h32": {"model": {"hidden_dim": 32}},
          "h64": {"model": {"hidden_dim": 64}},
      },
      kmers=(1,),                         # tokenizations: nucleotides
      seeds=(0,),                         # training seeds per point
      budget="",                          # IsoFLOP: the compute budget sets the steps
      ngram_orders=(),                    # (N-gram families only)
  )
  study.families.transformer = dict(      # pre-LN causal transformers, 2 heads, MLP 2 x width
      config="configs/transformer.py",
      overrides={"model": {"num_heads": 2, "max_len": 128}, "train": train},
      sizes={
          "d16": {"model": {"embed_dim": 16, "mlp_dim": 32, "num_layers": 1}},
          "d32": {"model": {"embed_dim": 32, "mlp_dim": 64, "num_layers": 1}},
          "d48": {"model": {"embed_dim": 48, "mlp_dim": 96, "num_layers": 2}},
      },
      kmers=(1,), seeds=(0,), budget="", ngram_orders=(),
  )
  return study
