"""A study config, checked, and the points it declares (family x tokenization x size x seed).

A study config (configs/studies/*.py, an ml_collections ConfigDict) holds:
  name         the study's name (a study workdir holds one study);
  data         overrides of config.data shared by every family (same splits);
  fractions    training-data sizes as fractions of the train split's nucleotides,
  nucleotides  ... or as nucleotide counts,
  budgets      ... or IsoFLOP compute budgets in training FLOPs: each model size
               trains on the whole train split for the steps that spend the
               budget (exactly one of the three is non-empty);
  families     {name: family}; a family has
                 config        base config file (configs/*.py),
                 overrides     nested {block: {field: value}} applied to it,
                 kmers         tokenizations (1 = nucleotides, 2..6 = k-mers),
                 seeds         training seeds per point,
                 budget        '' (the base config's), 'epochs:N', 'nucleotides:N'
                               (training nucleotides, all sizes alike) or 'patience:N'
                               (early stopping; train.max_steps, if set, stays a cap),
                 ngram_orders  N-grams: fit each order that fits the k-mer codes
                               and keep the best on validation (() = the config's order),
                 sizes         the model-size ladder {label: overrides} (N-grams: orders);
                               {} = the one size of the base config and overrides;
  target_losses  bits/nt for the data-needed table;
  bootstrap      bootstrap replicates of each fit; fit_seed their seed.

Every point is an ordinary workdir, WORKDIR/points/<name>/, trained by
`training.trainer.train_and_evaluate` with the point's config.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os

import ml_collections

from dnagen_jax import config_check
from dnagen_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDY_FIELDS = ("name", "data", "fractions", "nucleotides", "families", "target_losses",
                "bootstrap", "fit_seed", "budgets", "optimal_budgets")
FAMILY_FIELDS = ("config", "overrides", "kmers", "seeds", "budget", "ngram_orders", "sizes")
BUDGETS = ("epochs", "nucleotides", "patience")


@dataclasses.dataclass
class Point:
  """One training run of the study.

  size: the declared size (a fraction or a nucleotide count);
  nucleotides: the subset target D0 (the subset holds >= D0 nucleotides);
  orders: N-gram orders to choose from on validation (() = the config's).
  """
  name: str
  family: str
  kmer: int
  size: float
  nucleotides: int
  seed: int
  config: ml_collections.ConfigDict
  orders: tuple = ()
  size_name: str = ""          # the ladder entry ('' without a ladder)
  budget_flops: float = 0.0    # IsoFLOP budget C (0: a data-size study)
  flops_per_nt: float = 0.0    # training FLOPs per nucleotide (models.flops; 0 for N-grams)
  params: tuple = (0, 0)       # (parameters, without embeddings) from the config (0 for N-grams)


def load_config_file(path: str):
  """get_config() of a config file, found as given or under the project root."""
  full = path if os.path.isabs(path) or os.path.exists(path) else os.path.join(ROOT, path)
  if not os.path.isfile(full):
    raise UserError(f"config file {path!r} not found")
  spec = importlib.util.spec_from_file_location("study_base_config", full)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    return module.get_config()
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"{path}: cannot load config ({type(e).__name__}: {e})") from None


def apply_overrides(config, overrides, where: str, path: str = ""):
  """Sets the fields of a nested {block: {field: value}} (or {"block.field": value}) tree.

  An unknown field is a UserError naming `where` and the field's dotted path.
  """
  items = overrides.items() if hasattr(overrides, "items") else ()
  for key, value in items:
    if "." in key:  # dotted form, as launch/sweep.py's sweep files write it
      head, rest = key.split(".", 1)
      apply_overrides(config, {head: {rest: value}}, where, path)
      continue
    if not hasattr(config, "keys") or key not in config:
      fields = ", ".join(sorted(config.keys())) if hasattr(config, "keys") else "none"
      raise UserError(f"{where}: unknown config field '{path}{key}' (fields here: {fields})")
    if hasattr(value, "items") and hasattr(config[key], "keys"):
      apply_overrides(config[key], value, where, f"{path}{key}.")
    else:
      config[key] = tuple(value) if isinstance(value, list) else value
  return config


def _check_fields(node, allowed, where: str):
  for key in node.keys():
    if key not in allowed:
      raise UserError(f"{where}: unknown field {key!r} (fields: {', '.join(allowed)})")


def validate_study(study) -> None:
  """One-line UserErrors for a malformed study config."""
  _check_fields(study, STUDY_FIELDS, "study config")
  if not study.get("families"):
    raise UserError("study config: no families declared")
  fractions, nucleotides = tuple(study.get("fractions", ())), tuple(study.get("nucleotides", ()))
  budgets = tuple(study.get("budgets", ()))
  if sum(map(bool, (fractions, nucleotides, budgets))) != 1:
    raise UserError("study config: give sizes as exactly one of fractions, nucleotides or "
                    "budgets (IsoFLOP compute budgets)")
  for c in tuple(budgets) + tuple(study.get("optimal_budgets", ())):
    if not float(c) > 0:
      raise UserError(f"study config: compute budget {c} must be a positive number of FLOPs")
  for f in fractions:
    if not 0 < f <= 1:
      raise UserError(f"study config: fraction {f} is not in (0, 1] (sizes larger than the "
                      "train split do not exist)")
  for n in nucleotides:
    if int(n) <= 0:
      raise UserError(f"study config: nucleotides {n} must be positive")
  for name, family in study.families.items():
    where = f"study family {name!r}"
    if not hasattr(family, "keys"):
      raise UserError(f"{where}: must be a dict with fields {', '.join(FAMILY_FIELDS)}")
    _check_fields(family, FAMILY_FIELDS, where)
    if not family.get("config"):
      raise UserError(f"{where}: no base config (field 'config')")
    for k in family.get("kmers", (1,)):
      if k not in range(1, 7):
        raise UserError(f"{where}: k-mer length {k} must be 1..6")
    sizes = family.get("sizes", {})
    if not hasattr(sizes, "items"):
      raise UserError(f"{where}: sizes must be a dict {{label: overrides}}, e.g. "
                      "{'h64': {'model': {'hidden_dim': 64}}}")
    for label in sizes.keys():
      if not label or not all(c.isalnum() or c in "-." for c in label):
        raise UserError(f"{where}: size label {label!r} must be letters, digits, '-' or '.' "
                        "(it becomes part of the point's name)")
    for label in sizes.keys():  # each ladder entry against the family's validation, before any data is read
      config = load_config_file(family.config)
      apply_overrides(config, {"data": study.get("data", {})}, "study config")
      apply_overrides(config, family.get("overrides", {}), f"{where} overrides")
      apply_overrides(config, sizes[label], f"{where} size {label!r}")
      try:
        config_check.validate(config)
      except UserError as e:
        raise UserError(f"{where} size {label!r}: {e}") from None
    budget = family.get("budget", "")
    if budget and budgets:
      raise UserError(f"{where}: budget {budget!r} with IsoFLOP budgets: the compute budget "
                      "sets each point's steps (use budget='')")
    if budget:
      kind, _, value = budget.partition(":")
      if kind not in BUDGETS or not value.isdigit() or int(value) <= 0:
        raise UserError(f"{where}: budget {budget!r} must be '', or one of "
                        f"{', '.join(b + ':N' for b in BUDGETS)} with N > 0")


def size_label(size, fractions: bool) -> str:
  return f"f{size:g}" if fractions else f"n{int(size)}"


def budget_label(flops: float) -> str:
  """'c1e11' for 1e11 FLOPs (3 significant digits, no '+')."""
  return f"c{float(flops):.3g}".replace("+", "")


def _is_ngram_family(family) -> bool:
  if "ngram_orders" in family and tuple(family.ngram_orders):
    return True
  return load_config_file(family.config).model.name == "ngram" or (
      family.get("overrides", {}).get("model", {}).get("name") == "ngram")


def point_names(study) -> list[tuple]:
  """(point name, family, kmer, size, seed, size label, budget FLOPs) of every point.

  Without a ladder and budgets (the data-size studies made before) names are
  <family>_k<k>_<f|n><size>_s<seed>; a ladder adds _<label> after k; an
  IsoFLOP study names the budget, <family>_k<k>_<label>_c<budget>_s<seed>
  (N-grams, which spend no training FLOPs: one point per size on the whole split).
  """
  budgets = tuple(study.get("budgets", ()))
  fractions = bool(tuple(study.get("fractions", ())))
  out = []
  for family_name, family in study.families.items():
    labels = list(family.get("sizes", {}).keys()) or [""]
    for k in family.get("kmers", (1,)):
      for label in labels:
        mid = f"_{label}" if label else ""
        if budgets:
          axis = [(None, 0.0)] if _is_ngram_family(family) else [
              (budget_label(c), float(c)) for c in sorted(budgets)]
          for tag, c in axis:
            for seed in family.get("seeds", (0,)):
              name = f"{family_name}_k{k}{mid}{'_' + tag if tag else ''}_s{seed}"
              out.append((name, family_name, int(k), 1.0, int(seed), label, c))
          continue
        sizes = sorted(study.fractions if fractions else study.nucleotides)
        for size in sizes:
          for seed in family.get("seeds", (0,)):
            name = f"{family_name}_k{k}{mid}_{size_label(size, fractions)}_s{seed}"
            out.append((name, family_name, int(k), size, int(seed), label, 0.0))
  return out


def _budget(config, budget: str, mean_gene_nt: float) -> None:
  """Sets the family's training budget on `config.train` (the same rule for every size)."""
  if not budget:
    return
  kind, _, value = budget.partition(":")
  value = int(value)
  if kind == "epochs":
    config.train.num_epochs, config.train.max_steps, config.train.patience = value, 0, 0
  elif kind == "patience":  # train.max_steps (if set) stays a cap
    config.train.patience, config.train.num_epochs = value, 10**6
  else:  # a fixed number of training nucleotides: steps of batch_size mean-length genes
    steps = max(1, math.ceil(value / (config.train.batch_size * mean_gene_nt)))
    config.train.num_epochs, config.train.max_steps, config.train.patience = 10**6, steps, 0


def points(study, train_lengths=None, skipped=None) -> list[Point]:
  """Every point with its resolved config.

  Args:
    train_lengths: int [n] nucleotides of each gene of the (whole) train split;
      needed to resolve fractions, nucleotide budgets and compute budgets
      (None: the data set is read here).
    skipped: a list that receives (point name, why) of IsoFLOP points whose
      model cannot take one step on its budget (larger sizes at small budgets).
  """
  from dnagen_jax.data import kmers  # pylint: disable=g-import-not-at-top
  from dnagen_jax.models import flops  # pylint: disable=g-import-not-at-top
  validate_study(study)
  if train_lengths is None:
    train_lengths = train_lengths_of(study)
  total = int(sum(train_lengths))
  mean_gene = total / max(1, len(train_lengths))
  fractions = bool(tuple(study.get("fractions", ())))
  out, smallest_step = [], {}
  for name, family_name, k, size, seed, label, budget in point_names(study):
    family = study.families[family_name]
    where = f"study family {family_name!r}" + (f" size {label!r}" if label else "")
    config = load_config_file(family.config)
    apply_overrides(config, {"data": study.get("data", {})}, "study config")
    apply_overrides(config, family.get("overrides", {}), f"study family {family_name!r} overrides")
    if label:
      apply_overrides(config, family.sizes[label], where)
    if budget or study.get("budgets", ()):
      target = 0  # IsoFLOP: the whole train split, as many passes as the budget pays for
    else:
      target = math.ceil(size * total) if fractions else int(size)
    if target > total:
      raise UserError(f"{where}: size {size:g} = {target:,} nucleotides is larger than the train "
                      f"split ({total:,} nucleotides in {len(train_lengths):,} genes)")
    config.data.kmer, config.data.train_nucleotides, config.train.seed = k, target, seed
    _budget(config, family.get("budget", ""), mean_gene)
    orders = tuple(family.get("ngram_orders", ()))
    if config.model.name == "ngram":
      from dnagen_jax.ngram import codes  # pylint: disable=g-import-not-at-top
      if orders:
        fitting = tuple(n for n in orders if n * k <= codes.MAX_ORDER)
        if not fitting:
          raise UserError(f"{where}: no N-gram order of {tuple(orders)} fits {k}-mer tokens "
                          f"(order x k must be <= {codes.MAX_ORDER} nucleotides per code)")
        orders = fitting
        config.model.ngram_order = max(orders)
      codes.check_order(config.model.ngram_order, kmer=k)
    elif orders:
      raise UserError(f"{where}: ngram_orders is for N-gram families only")
    try:
      config_check.validate(config)
    except UserError as e:
      raise UserError(f"{where}: {e}") from None
    per_nt, n_params = 0.0, (0, 0)
    if config.model.name in flops.NEURAL:
      vocab = kmers.vocab_size(k)
      per_nt = flops.flops_per_nucleotide(config.model, vocab, k, train_lengths,
                                          config.train.batch_size)
      n_params = flops.params(config.model, vocab)
    if budget:  # IsoFLOP: steps of batch_size mean genes that spend the budget
      step_cost = per_nt * config.train.batch_size * mean_gene
      steps = int(round(budget / step_cost))
      key = (family_name, k, budget)
      if key not in smallest_step or step_cost < smallest_step[key][0]:
        smallest_step[key] = (step_cost, label)
      if steps < 1:
        if skipped is not None:
          skipped.append((name, f"{budget:.3g} FLOPs < one step ({step_cost:.3g} FLOPs)"))
        continue
      config.train.num_epochs, config.train.max_steps, config.train.patience = 10**6, steps, 0
    settings = _data_settings(config.data)
    if out and settings != _data_settings(out[0].config.data):
      raise UserError(f"{where}: its data set differs from family {out[0].family!r}'s (set the "
                      "data in the study config's data block, not in a family)")
    out.append(Point(name, family_name, k, size, target, seed, config, orders, label,
                     float(budget), per_nt, n_params))
  for (family_name, k, budget), (cost, label) in smallest_step.items():
    if not any(p.family == family_name and p.kmer == k and p.budget_flops == budget for p in out):
      raise UserError(f"study family {family_name!r}: compute budget {budget:.3g} FLOPs is too "
                      f"small for its smallest model ({label or 'the base config'}, k={k}) to "
                      f"take one step ({cost:.3g} FLOPs a step)")
  if any(p.size_name for p in out):  # a ladder trains (and tabulates) its small sizes first
    order = {name: i for i, name in enumerate(study.families)}
    out.sort(key=lambda p: (order[p.family], p.kmer, p.params[0], p.size_name, p.budget_flops,
                            p.size, p.seed))
  return out


def _data_settings(data_config) -> dict:
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  return storage.dataset_settings(data_config)


def base_data_config(study):
  """config.data of the study's first family with the study's data overrides, whole train split."""
  family = next(iter(study.families.values()))
  config = load_config_file(family.config)
  apply_overrides(config, {"data": study.get("data", {})}, "study config")
  config.data.train_nucleotides, config.data.kmer = 0, 1
  return config.data


def train_lengths_of(study) -> list[int]:
  """Nucleotides of every gene of the whole train split of the study's data."""
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  return storage.example_lengths(storage.data_source(base_data_config(study), "train")).tolist()
