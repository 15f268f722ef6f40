"""Config validation and the workdir's config.json (one model per workdir)."""

from __future__ import annotations

import json
import os

from dnagen_jax.errors import UserError

_CHOICES = {
    ("model", "name"): ("lstm", "gru", "transformer", "ngram", "infinigram", "mixture"),
    ("model", "dtype"): ("float32", "bfloat16"),
    ("train", "schedule"): ("constant", "cosine"),
    ("data", "source"): ("synthetic", "files"),
    ("data", "unknown_policy"): ("error", "n", "skip"),
    ("model", "init"): ("pytorch", "flax"),
    ("model", "transformer_init"): ("flax", "pytorch"),
}
_POSITIVE = [("model", "embed_dim"), ("model", "hidden_dim"), ("model", "num_layers"),
             ("model", "max_len"), ("train", "batch_size"), ("train", "eval_every"),
             ("train", "log_every"), ("train", "checkpoint_every"), ("train", "eval_batch_size")]


def _field(config, block: str, field: str):
  """config.block.field, or a one-line UserError naming it when an (older) config file lacks it."""
  try:
    return config[block][field]
  except (KeyError, AttributeError):
    raise UserError(f"config.{block}.{field} is missing; config files should start from "
                    "configs/default.py's get_config() (see configs/)") from None


def validate(config) -> None:
  """Raises a one-line UserError for the first bad or missing value."""
  for (block, field), choices in _CHOICES.items():
    value = _field(config, block, field)
    if value not in choices:
      raise UserError(f"config.{block}.{field}={value!r} must be one of {', '.join(choices)}")
  for block, field in _POSITIVE:
    value = _field(config, block, field)
    if value <= 0:
      raise UserError(f"config.{block}.{field}={value} must be positive")
  attention_block = _field(config, "model", "attention_block")
  if attention_block < 0:
    raise UserError(f"config.model.attention_block={attention_block} must be 0 "
                    "(full attention) or a positive block size")
  cpu_kernel = _field(config, "model", "cpu_kernel")
  if not isinstance(cpu_kernel, bool):
    raise UserError(f"config.model.cpu_kernel={cpu_kernel!r} must be True or False")
  sort_noise = _field(config, "data", "sort_noise")
  if sort_noise < 0:
    raise UserError(f"config.data.sort_noise={sort_noise} must be >= 0 (nucleotides)")
  num_buckets = _field(config, "data", "num_buckets")
  if num_buckets < 0:
    raise UserError(f"config.data.num_buckets={num_buckets} must be >= 0 (0 = length_buckets as given)")
  _validate_infinigram_mixture(config)
  _validate_accelerator_paths(config)
  kmer = config.data.get("kmer", 1)
  if kmer not in range(1, 7):
    raise UserError(f"config.data.kmer={kmer!r} must be 1 (nucleotides) or a k-mer length 2..6")
  if kmer > 1 and config.data.unknown_policy == "n" and config.data.get("max_n_fraction", 1.0) > 0:
    raise UserError(f"config.data.kmer={kmer} reads A, C, G, T only: use data.unknown_policy "
                    "'error' or 'skip', not 'n' (or, for windows, data.max_n_fraction=0)")
  if config.data.get("train_nucleotides", 0) < 0:
    raise UserError(f"config.data.train_nucleotides={config.data.train_nucleotides} must be >= 0 (0 = all)")
  _validate_windows(config)
  buckets = list(config.data.length_buckets)
  if not buckets or buckets != sorted(buckets):
    raise UserError(f"config.data.length_buckets={tuple(buckets)} must be increasing")
  if config.model.name == "transformer" or config.model.position_embedding:
    if buckets[-1] > config.model.max_len:
      raise UserError(f"config.data.length_buckets reaches {buckets[-1]} tokens but "
                      f"config.model.max_len is {config.model.max_len}")


def _validate_windows(config) -> None:
  """The genome window fields (docs/data.md#genomes-windows); absent fields read as their defaults."""
  d = config.data
  window, stride = int(d.get("window", 0)), int(d.get("stride", 0))
  if window < 0:
    raise UserError(f"config.data.window={window} must be >= 0 (0 = every record whole)")
  if window > 0 and not 1 <= stride <= window:
    raise UserError(f"config.data.stride={stride} must be in 1..data.window={window} "
                    f"(e.g. --config.data.stride={window}: training windows side by side)")
  if window > 0:
    kmer = int(d.get("kmer", 1))
    needed = -(-window // kmer) + 1  # tokens of a window plus BOS
    if needed > config.model.max_len:
      raise UserError(f"config.data.window={window} needs {needed} tokens (with BOS) but "
                      f"config.model.max_len is {config.model.max_len}: set a smaller window or a larger max_len")
    if needed > list(d.length_buckets)[-1]:
      raise UserError(f"config.data.window={window} needs {needed} tokens (with BOS) but the last of "
                      f"config.data.length_buckets is {list(d.length_buckets)[-1]}: windows would be cut")
  split_by = d.get("split_by", "auto")
  if split_by not in ("auto", "hash", "record", "file", "bed", "blocks"):
    raise UserError(f"config.data.split_by={split_by!r} must be one of auto, hash, record, file, bed, blocks")
  if split_by == "bed" and not d.get("split_bed", ""):
    raise UserError("config.data.split_by='bed' needs config.data.split_bed, a BED file naming each interval's split")
  if int(d.get("block_size", 100000)) <= 0:
    raise UserError(f"config.data.block_size={d.block_size} must be positive")
  if int(d.get("n_run_cut", 0)) < 0:
    raise UserError(f"config.data.n_run_cut={d.n_run_cut} must be >= 0 (0 = never cut)")
  if not 0.0 <= float(d.get("max_n_fraction", 1.0)) <= 1.0:
    raise UserError(f"config.data.max_n_fraction={d.max_n_fraction} must be in [0, 1]")
  weight = float(d.get("softmask_weight", 1.0))
  if weight < 0.0:
    raise UserError(f"config.data.softmask_weight={weight} must be >= 0")
  if weight != 1.0 and (window == 0 or int(d.get("kmer", 1)) != 1):
    raise UserError(f"config.data.softmask_weight={weight} needs windows (data.window > 0) of single "
                    "nucleotides (data.kmer=1): genes are stored upper-case")
  if int(d.get("val_windows", 0)) < 0:
    raise UserError(f"config.data.val_windows={d.val_windows} must be >= 0 (0 = all)")


def _validate_infinigram_mixture(config) -> None:
  """The infinigram's and the mixture's own fields (configs/infinigram.py, configs/mixture.py)."""
  name = config.model.name
  if name == "infinigram":
    cap, raw_from = _field(config, "model", "infinigram_max_order"), _field(config, "model", "infinigram_raw_from")
    above = _field(config, "model", "infinigram_above")
    if not isinstance(cap, int) or cap < 0:
      raise UserError(f"config.model.infinigram_max_order={cap!r} must be an integer >= 0 (0 = no cap)")
    if not isinstance(raw_from, int) or not 1 <= raw_from <= 21:
      raise UserError(f"config.model.infinigram_raw_from={raw_from!r} must be an integer in 1..21")
    if above not in ("longest", "branching", "none"):
      raise UserError(f"config.model.infinigram_above={above!r} must be one of longest, branching, none")
    if config.data.get("kmer", 1) != 1:
      raise UserError(f"config.data.kmer={config.data.kmer}: the infinigram reads nucleotides only "
                      "(data.kmer=1); k-mer N-grams are model.name='ngram'")
  if name == "mixture":
    _field(config, "model", "mixture_workdirs")
    feature = _field(config, "model", "mixture_feature")
    if feature not in ("", "longest_match"):
      raise UserError(f"config.model.mixture_feature={feature!r} must be '' or 'longest_match'")
    _field(config, "model", "mixture_buckets")


# The fields that decide what a run learns: a workdir resumes only under the
# same values. Everything else (where data is stored, remat, the CPU kernel,
# the compute dtype, bucket shapes, batching noise, evaluation batch size,
# logging and checkpoint cadence, time limits) may change between sessions,
# e.g. to resume on another node, a GPU, or under a tighter memory budget.
RESUME_FIELDS = {
    "model": ("name", "embed_dim", "hidden_dim", "num_layers", "position_embedding", "max_len",
              "num_heads", "head_dim", "mlp_dim", "init", "ngram_order", "ngram_smoothing",
              "ngram_k", "ngram_kn_lower_discounts", "infinigram_max_order", "infinigram_raw_from",
              "infinigram_above", "mixture_workdirs", "mixture_feature", "mixture_buckets",
              "bias_pair", "transformer_init"),
    "data": ("source", "files", "min_length", "max_length", "unknown_policy", "val_fraction",
             "test_fraction", "synthetic_order", "synthetic_alpha", "synthetic_seed",
             "synthetic_sizes", "train_nucleotides", "kmer",
             "window", "stride", "split_by", "split_bed", "block_size", "n_run_cut", "max_n_fraction",
             "softmask_weight", "reverse_complement", "val_windows"),
}

# Fields added after workdirs were first written, with the value those earlier
# runs used: an older config.json is read as if it held them.
LEGACY_DEFAULTS = {
    ("model", "init"): "flax",
    ("data", "sort_noise"): 0.0,
    ("data", "num_buckets"): 0,
    ("data", "train_nucleotides"): 0,
    ("data", "kmer"): 1,
    ("model", "bias_pair"): False,
    ("model", "transformer_init"): "flax",
    ("data", "window"): 0,
    ("data", "stride"): 0,
    ("data", "split_by"): "auto",
    ("data", "split_bed"): "",
    ("data", "block_size"): 100000,
    ("data", "n_run_cut"): 0,
    ("data", "max_n_fraction"): 1.0,
    ("data", "softmask_weight"): 1.0,
    ("data", "reverse_complement"): False,
    ("data", "val_windows"): 0,
}


def complete_workdir_config(config: dict) -> dict:
  """A workdir's config.json dict with LEGACY_DEFAULTS filled in where absent."""
  for (block, field), value in LEGACY_DEFAULTS.items():
    config.setdefault(block, {}).setdefault(field, value)
  return config


def _norm(value):
  """JSON round-trips tuples as lists: compare them alike."""
  return list(value) if isinstance(value, tuple) else value


def write_or_check_workdir_config(config, workdir: str, write: bool = True) -> None:
  """Writes config.json, or checks that the workdir trains the same model and data.

  write=False only checks (the processes of a multi-host run other than 0).

  Only RESUME_FIELDS are compared; the new config.json then records the
  values of this session.
  """
  path = os.path.join(workdir, "config.json")
  new = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      old = complete_workdir_config(json.load(f))
    for block, what in (("model", "a different model"), ("data", "a different data set")):
      diffs = [f"{block}.{k}: {_norm(old[block].get(k))!r} -> {_norm(new[block].get(k))!r}"
               for k in RESUME_FIELDS[block]
               if _norm(old[block].get(k)) != _norm(new[block].get(k))]
      if diffs:
        raise UserError(f"{workdir} holds a run of {what} ({'; '.join(diffs[:3])}); "
                        f"use a new --workdir or the original config")
  if not write:
    return
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(new, f, indent=2)
  os.replace(tmp, path)  # atomic: an interrupted write never leaves half a config


def read_workdir_config(workdir: str) -> dict:
  """A trained workdir's config.json, completed with LEGACY_DEFAULTS."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir}: no trained model here (config.json missing); train one with --mode=train first")
  with open(path) as f:
    return complete_workdir_config(json.load(f))


def _validate_accelerator_paths(config) -> None:
  """model.recurrent_impl / attention_impl and train.fsdp (absent in older config files: defaults)."""
  model = config.model
  recurrent = model.get("recurrent_impl", "auto")
  if recurrent not in ("auto", "layers", "wavefront", "cudnn"):
    raise UserError(f"config.model.recurrent_impl={recurrent!r} must be one of auto, layers, wavefront, cudnn")
  if recurrent == "cudnn" and (model.name != "lstm" or model.dtype != "float32"):
    raise UserError(f"config.model.recurrent_impl='cudnn' runs float32 LSTMs only (jax.experimental.rnn), "
                    f"not {model.name} in {model.dtype}; use 'auto' or 'wavefront'")
  attention = model.get("attention_impl", "auto")
  if attention not in ("auto", "blocks", "xla", "cudnn"):
    raise UserError(f"config.model.attention_impl={attention!r} must be one of auto, blocks, xla, cudnn")
  if attention == "cudnn" and model.dtype != "bfloat16":
    raise UserError("config.model.attention_impl='cudnn' needs config.model.dtype='bfloat16' "
                    "(cuDNN's fused attention takes 16-bit inputs only)")
  fsdp = config.train.get("fsdp", 1)
  if not isinstance(fsdp, int) or fsdp < 1:
    raise UserError(f"config.train.fsdp={fsdp!r} must be a positive number of devices")
