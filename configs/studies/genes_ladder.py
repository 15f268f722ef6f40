r"""Which family is the most compute-efficient on genes.csv? IsoFLOP ladders of LSTM, GRU, transformer.

Command (from the project root, where ../shared/data/human_genes/genes.csv is):
  python -m dnagen_jax.main --mode=study --config=configs/studies/genes_ladder.py --workdir=/tmp/dnagen/genes_ladder

Each of 2 compute budgets (3e9 and 1e10 training FLOPs) is spent by 3 sizes
of each neural family on the whole train split (genes of at most 512 nt:
1.38M nucleotides, 6,003 genes); Kneser-Ney N-grams at orders 2..16 (their
"size") are fitted on the same split once (they spend no training FLOPs).
Tiny models and budgets: what 2 shared CPU cores allow, far from these
families' compute-optimal sizes at real budgets. Measured (docs/studies.md;
23 points, 106 minutes of point wall time under heavy load): best test
bits/nt at 3e9 / 1e10 FLOPs: GRU 1.9957 / 1.9470, LSTM 2.0677 / 1.9564,
transformer 2.2671 / 2.0152 (each at its smallest size); Kneser-Ney 16-gram
1.8202.
"""

import ml_collections


def get_config():
  study = ml_collections.ConfigDict()
  study.name = "genes-ladder"              # the study's name: a study workdir holds one study
  study.data = ml_collections.ConfigDict()  # overrides of config.data for every family
  study.data.source = "files"              # read genes from files ...
  study.data.files = "../shared/data/human_genes/genes.csv"  # ... this one (relative to the project root)
  study.data.max_length = 512              # genes of at most 512 nucleotides (the shorter 3/4 of genes.csv)
  study.data.length_buckets = (512,)       # one padded length: one compiled program per model
  study.fractions = ()                     # (a data-size study: fractions of the train split)
  study.nucleotides = ()                   # (... or nucleotide counts)
  study.budgets = (3e9, 1e10)              # IsoFLOP budgets: training FLOPs each size spends
  study.optimal_budgets = (1e11, 1e12)     # compute-optimal N and D tabulated at these budgets
  study.target_losses = ()                 # (the L(D) fits' data-needed table: none here)
  study.bootstrap = 200                    # bootstrap replicates per fit
  study.fit_seed = 0                       # seed of the bootstrap

  # every point: 32 genes a step, validation only at its last step (no early stopping in an IsoFLOP profile)
  train = {"batch_size": 32, "eval_every": 10**6, "checkpoint_every": 500, "log_every": 200, "warmup_steps": 20}
  recurrent_sizes = {                      # label -> overrides: hidden units (embedding 16)
      "h16": {"model": {"hidden_dim": 16}},
      "h32": {"model": {"hidden_dim": 32}},
      "h64": {"model": {"hidden_dim": 64}},
  }
  study.families = ml_collections.ConfigDict()
  study.families.lstm = dict(              # one-layer LSTMs
      config="configs/default.py",         # base config file
      overrides={"model": {"embed_dim": 16}, "train": train},  # over the base config
      sizes=recurrent_sizes,               # the ladder
      kmers=(1,),                          # tokenizations: nucleotides
      seeds=(0,),                          # training seeds per point
      budget="",                           # IsoFLOP: the compute budget sets the steps
      ngram_orders=(),                     # (N-gram families only)
  )
  study.families.gru = dict(               # one-layer GRUs, the same ladder
      config="configs/gru.py",
      overrides={"model": {"embed_dim": 16}, "train": train},
      sizes=recurrent_sizes, kmers=(1,), seeds=(0,), budget="", ngram_orders=(),
  )
  study.families.transformer = dict(       # pre-LN causal transformers, 2 heads, MLP 2 x width
      config="configs/transformer.py",
      overrides={"model": {"num_heads": 2}, "train": train},
      sizes={
          "d16": {"model": {"embed_dim": 16, "mlp_dim": 32, "num_layers": 1}},
          "d32": {"model": {"embed_dim": 32, "mlp_dim": 64, "num_layers": 1}},
          "d48": {"model": {"embed_dim": 48, "mlp_dim": 96, "num_layers": 2}},
      },
      kmers=(1,), seeds=(0,), budget="", ngram_orders=(),
  )
  study.families.kn = dict(                # interpolated Kneser-Ney; its order is its size
      config="configs/ngram.py",
      overrides={},
      sizes={f"o{n}": {"model": {"ngram_order": n}} for n in (2, 4, 8, 12, 16)},
      kmers=(1,), seeds=(0,), budget="", ngram_orders=(),
  )
  return study
