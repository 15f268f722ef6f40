"""Default: a small LSTM on the embedded synthetic genes (no download needed).

Command:
  python -m dnagen_jax.main --config=configs/default.py --workdir=/tmp/dnagen/default

Expected result (2-core CPU, about 75 s): test perplexity within 3% of the
oracle perplexity of the synthetic test split (measured: 2.9050 against the
oracle 2.8829, +0.8%, in 68 s); see README.
"""

import ml_collections


def get_data_config() -> ml_collections.ConfigDict:
  """The data block shared by every config."""
  data = ml_collections.ConfigDict()
  data.source = "synthetic"        # 'synthetic' (embedded Markov genes) or 'files'
  data.files = ""                  # files: comma-separated CSV/FASTA paths, dirs or globs ('' = TFDS manual dir)
  data.data_dir = ""               # where TFDS writes prepared data ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)
  data.min_length = 1              # drop genes shorter than this (nucleotides)
  data.max_length = 1000           # drop genes longer than this (the study: 1000)
  data.unknown_policy = "error"    # non-ACGT characters: 'error', 'n' (IUPAC -> N) or 'skip' the record
  data.val_fraction = 0.1          # files: share of genes hashed to validation
  data.test_fraction = 0.1         # files: share of genes hashed to test
  data.synthetic_order = 3         # synthetic: order k of the Markov source
  data.synthetic_alpha = 1.0       # synthetic: Dirichlet concentration (lower = more predictable)
  data.synthetic_seed = 0          # synthetic: seed of the chain and of the genes
  data.synthetic_sizes = (3000, 300, 300)  # synthetic: genes in train / validation / test
  data.length_buckets = (256, 512, 1024)   # pad each batch up to the first bucket that fits (tokens incl. BOS); one compiled shape each
  data.num_buckets = 0             # > 0: pad to this many lengths fitted to the data instead (the last bucket stays the cap)
  data.train_nucleotides = 0       # train on the nested subset of at least this many nucleotides of the train split (0 = all; see dnagen_jax/data/subsets.py)
  data.kmer = 1                    # tokens: 1 = single nucleotides, k = 2..6 non-overlapping k-mers (docs/studies.md: the tail rule)
  data.sort_noise = 25.0           # batches of genes sorted by length + Uniform[0, sort_noise) nucleotides (0 = strict sort)
  # Genomes: records of any length cut into windows (docs/data.md#genomes-windows). At these defaults: genes, as above.
  data.window = 0                  # nucleotides per window (0 = every record whole, as genes)
  data.stride = 0                  # window > 0: nucleotides between training window starts, 1..window
  data.split_by = "auto"           # 'auto' (genes: 'hash'; windows: 'blocks'), 'hash' (sequence), 'record' (id), 'file', 'bed', 'blocks'
  data.split_bed = ""              # split_by='bed': BED file of chrom, start, end, split (train/validation/test)
  data.block_size = 100000         # split_by='blocks': nucleotides per hashed block (also the unit of nested subsets of windows)
  data.n_run_cut = 0               # cut records at runs of at least this many N (0 = never)
  data.max_n_fraction = 1.0        # drop windows whose share of N is larger (1.0 = keep all)
  data.softmask_weight = 1.0       # training loss weight of lowercase (soft-masked) bases (1.0 = read as uppercase)
  data.reverse_complement = False  # training: read each window reverse-complemented with probability 1/2 (a fresh draw per epoch)
  data.val_windows = 0             # validate on a fixed sample of this many windows (0 = the whole validation split)
  return data


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.data = get_data_config()

  config.model = ml_collections.ConfigDict()
  config.model.name = "lstm"           # 'lstm', 'gru', 'transformer' or 'ngram'
  config.model.embed_dim = 32          # token (and position) embedding width
  config.model.hidden_dim = 128        # recurrent units per layer (lstm/gru)
  config.model.num_layers = 1          # stacked recurrent or transformer layers
  config.model.position_embedding = False  # add a learned position embedding (the study's LSTM had one)
  config.model.init = "pytorch"        # lstm/gru initialisation: 'pytorch' (nn.Embedding N(0,1), nn.LSTM/nn.Linear uniform biases) or 'flax' (Flax defaults, zero biases)
  config.model.transformer_init = "flax"  # transformer initialisation: 'flax' (LeCun normal, zero biases, embeddings N(0, 1/width)) or 'pytorch' (the twin's nn.Linear/nn.Embedding draws; docs/training.md)
  config.model.bias_pair = True        # lstm/gru: PyTorch's two biases b_ih, b_hh as two parameters (Adam moves their sum 2x as far as one bias; docs/training.md)
  config.model.max_len = 1024          # longest input in tokens (BOS + 1023 nucleotides, as in the study)
  config.model.num_heads = 3           # transformer: attention heads
  config.model.head_dim = 0            # transformer: width per head (0 = embed_dim // num_heads)
  config.model.mlp_dim = 256           # transformer: feed-forward width
  config.model.attention_block = 128   # transformer: query block size of the causal attention (0 = full T x T)
  config.model.cpu_kernel = True       # on CPU: the attention and the LSTM/GRU time loops in C++ kernels built on first use with g++ (False = XLA's forms)
  config.model.recurrent_impl = "auto"  # lstm/gru time loop: 'auto' (CPU: layer by layer, C++ kernel; CUDA GPU: cuDNN for float32 LSTMs; else 'wavefront'), 'layers', 'wavefront' (all layers in one loop) or 'cudnn' (docs/accelerators.md)
  config.model.attention_impl = "auto"  # transformer attention: 'auto' (CPU: query blocks, C++ kernel; GPU/TPU: jax.nn.dot_product_attention), 'blocks', 'xla' or 'cudnn' (docs/accelerators.md)
  config.model.remat = False           # recompute activations in the backward pass to save memory
  config.model.dtype = "float32"       # compute dtype: 'float32' or 'bfloat16' (params stay float32)
  config.model.ngram_order = 8         # ngram: order N
  config.model.ngram_smoothing = "kneser_ney"  # ngram: 'mle', 'laplace', 'add_k', 'kneser_ney', 'witten_bell'
  config.model.ngram_k = 1.0           # ngram: add-k pseudo-count
  config.model.ngram_kn_lower_discounts = "auto"  # ngram: KN discounts below the top order: auto (fit on held-out training genes), "" (textbook) or "D1,D2,D3"
  config.model.ngram_max_memory_gb = 0.0      # ngram: refuse fits estimated above this (0 = available RAM)

  config.train = ml_collections.ConfigDict()
  config.train.seed = 0                # parameter init and data order
  config.train.fsdp = 1                # devices each parameter and its Adam state are split over (mesh axis 'fsdp'; must divide the device count; docs/accelerators.md)
  config.train.batch_size = 16         # global batch (genes), split over all devices
  config.train.num_epochs = 40         # stop after this many passes over train (the study: 40)
  config.train.max_steps = 400         # and after this many steps (0 = no step limit)
  config.train.learning_rate = 6e-3    # peak learning rate (Adam)
  config.train.schedule = "cosine"     # 'constant' or 'cosine' (decay to 10% over max_steps)
  config.train.warmup_steps = 50       # linear warm-up steps from rate 0 (0 = none: the first step at the full rate)
  config.train.grad_clip = 1.0         # clip the global gradient norm (0 = off)
  config.train.weight_decay = 0.0      # AdamW decay (0 = plain Adam, as in the study)
  config.train.eval_every = 200        # steps between validation passes
  config.train.patience = 5            # early stopping: validations without improvement (0 = off)
  config.train.log_every = 50          # steps between progress lines
  config.train.checkpoint_every = 200  # steps between checkpoints
  config.train.keep_checkpoints = 2    # most recent checkpoints kept (the best one is kept too)
  config.train.eval_batch_size = 32    # genes per evaluation batch
  config.train.max_minutes = 0.0       # stop training after this much wall time (all sessions) and evaluate (0 = no limit)
  config.train.halt_after_steps = 0    # stop (resumably) after this many steps of one invocation, e.g. for time-limited jobs (0 = off)
  return config
