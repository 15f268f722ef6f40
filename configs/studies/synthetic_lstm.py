r"""The LSTM's learning curve on the synthetic source, with a budget that lets every size converge.

configs/studies/synthetic.py caps the LSTM at 800 steps, so its larger sizes
stop at the cap, not at their data, and the fitted E is that budget's floor.
Here every point trains until validation stops improving (patience 3,
validation every 100 steps, at most 2000 steps, cosine decay over them).

Command:
  python -m dnagen_jax.main --mode=study --config=configs/studies/synthetic_lstm.py --workdir=/tmp/dnagen/study_lstm

Expected result (measured, docs/studies.md "The LSTM with a converging
budget"; 5 points, 16 minutes on 2 CPU cores): test bits/nt 1.5385 at 1/16 of
the data down to 1.5294-1.5308 at 1/2 and all of it; fitted E = 1.5302
(+0.18% over the oracle's 1.5275), 95% interval [1.0622, 1.5311]: it holds
the oracle, but its lower end is unresolved (one seed per size).
"""

import ml_collections


def get_config():
  study = ml_collections.ConfigDict()
  study.name = "synthetic-lstm"           # the study's name: a study workdir holds one study
  study.data = ml_collections.ConfigDict()  # overrides of config.data for every family (default: the synthetic source)
  study.fractions = tuple(2.0 ** -i for i in range(4, -1, -1))  # training sizes: 1/16 .. all of the train split, nested
  study.nucleotides = ()                  # ... or sizes in nucleotides (give exactly one of the two)
  study.target_losses = (1.535, 1.53)     # bits/nt for the data-needed table (the oracle: 1.5275)
  study.bootstrap = 200                   # bootstrap replicates per fit (confidence intervals)
  study.fit_seed = 0                      # seed of the bootstrap

  study.families = ml_collections.ConfigDict()
  study.families.lstm = dict(             # LSTM 1 x 128 (configs/default.py), early stopping on validation
      config="configs/default.py",        # base config file
      overrides={"train": {"eval_every": 100, "max_steps": 2000, "checkpoint_every": 500}},  # cosine over 2000 steps
      kmers=(1,),                         # tokenizations: nucleotides only
      seeds=(0,),                         # training seeds per point
      budget="patience:3",                # stop after 3 validations without improvement (max_steps stays a cap)
      ngram_orders=(),                    # (N-gram families only)
  )
  return study
