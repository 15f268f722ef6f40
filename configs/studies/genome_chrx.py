r"""Data-scaling study on a genome: 1e5 to 5e7 nucleotides of human chromosome X, in whole blocks.

Command (from the project root, where ../shared/data/genomes/ is):
  python -m dnagen_jax.main --mode=study --config=configs/studies/genome_chrx.py --workdir=/tmp/dnagen/study_chrx
One point per cluster job: add --dry_run to print each point's command.

The data: the 70 Mbp chrX slice cut into 1,000-nt windows, split by hashed
blocks of 100 kb (80/10/10), cut at runs of 100 N or more (docs/data.md).
Each nested size is every training window of the first blocks of one fixed
ranking of blocks (data/subsets.py), so every smaller set lies inside every
larger one and is made of whole 100-kb blocks. Curves: Kneser-Ney N-grams at
their best order on validation, on nucleotides and on 3-mer tokens, over 7
sizes. The validation split is sampled (data.val_windows) so that choosing
the order stays cheap; the test split is scored whole.
Expected result: not measured here in full (the 5e7 points need several GB
for the high orders); `--dry_run` lists the 14 points.
"""

import ml_collections


def get_config():
  study = ml_collections.ConfigDict()
  study.name = "genome_chrx"               # the study's name: a study workdir holds one study
  study.data = ml_collections.ConfigDict()  # overrides of config.data for every family
  study.data.source = "files"              # read records from files ...
  study.data.files = "../shared/data/genomes/human_chrX_grch37_first70Mb.fa.gz"  # ... this genome
  study.data.unknown_policy = "n"          # IUPAC codes and N read as N
  study.data.window = 1000                 # 1,000-nt windows
  study.data.stride = 1000                 # side by side (each epoch shifts them)
  study.data.split_by = "blocks"           # hashed 100-kb blocks: no window crosses a split boundary
  study.data.block_size = 100000           # block size, also the unit of the nested subsets
  study.data.n_run_cut = 100               # no window spans an assembly gap
  study.data.max_n_fraction = 0.1          # drop windows that are mostly N
  study.data.val_windows = 2000            # a fixed 2 Mbp validation sample
  study.fractions = ()                     # sizes in nucleotides instead (give exactly one of the two)
  study.nucleotides = (100_000, 300_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000, 50_000_000)
  study.target_losses = (1.95, 1.9)        # bits/nt for the data-needed table
  study.bootstrap = 200                    # bootstrap replicates per fit
  study.fit_seed = 0                       # seed of the bootstrap

  study.families = ml_collections.ConfigDict()
  study.families.kn = dict(                # interpolated Kneser-Ney, best order on validation
      config="configs/ngram.py",           # base config file
      overrides={},                        # nested {block: {field: value}} over the base config
      kmers=(1, 3),                        # tokenizations: nucleotides, 3-mers
      seeds=(0,),                          # an N-gram fit has no randomness: one seed
      budget="",                           # N-grams count everything once: no budget
      ngram_orders=(2, 4, 6, 8, 10, 12, 14, 16),  # orders tried (3-mers: those with 3 N <= 21)
  )
  return study
