"""Windows over long records: content, tiling, splits without leakage, filters, the gene case unchanged, errors."""

import json
import os

import numpy as np
import pytest

from configs import default
from dnagen_jax import config_check
from dnagen_jax.data import batching
from dnagen_jax.data import genome_store
from dnagen_jax.data import storage
from dnagen_jax.data import windows
from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb
from dnagen_jax.errors import UserError

GENOMES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "genomes")
NEW_FIELDS = ("window", "stride", "split_by", "split_bed", "block_size", "n_run_cut", "max_n_fraction",
              "softmask_weight", "reverse_complement", "val_windows")


def long_records(path, seed=0, lengths=(120_000, 80_000, 45_000) + (4_000,) * 9):
  """A FASTA of long random records with soft-masked stretches and N runs; returns {id: sequence}."""
  rng = np.random.default_rng(seed)
  recs = {}
  with open(path, "w") as f:
    for i, n in enumerate(lengths):
      s = np.array(list("ACGT"))[rng.integers(0, 4, n)]
      for _ in range(5):                                  # soft-masked repeats
        a = int(rng.integers(0, n - 500))
        s[a:a + 500] = np.char.lower(s[a:a + 500])
      for run in (30, 700, 2500)[: 3 if n > 10_000 else 1]:  # runs of N of several lengths
        a = int(rng.integers(0, n - run))
        s[a:a + run] = "N"
      seq = "".join(s)
      recs[f"chr{i}"] = seq
      f.write(f">chr{i} synthetic\n" + "\n".join(seq[j:j + 60] for j in range(0, n, 60)) + "\n")
  return recs


def window_config(tmp_dir, files, **overrides):
  config = default.get_config()
  d = config.data
  d.data_dir, d.source, d.files, d.unknown_policy = str(tmp_dir), "files", files, "n"
  d.window, d.stride, d.block_size = 1000, 500, 10_000
  d.val_fraction = d.test_fraction = 0.2
  for k, v in overrides.items():
    setattr(d, k, v)
  config.model.max_len, config.data.length_buckets = 1024, (1024,)
  config_check.validate(config)
  return config


def covered(src, with_jitter: bool) -> dict:
  """record id -> bool array of the positions inside any window of `src` (any epoch's shift)."""
  out = {}
  ids = src.store.record_ids
  for r, a, n, j in zip(src.record, src.start, src.length, src.jitter):
    rid = ids[int(r)]
    size = int(src.store.index["record_length"][int(r)])
    mask = out.setdefault(rid, np.zeros(size, bool))
    mask[int(a): int(a) + int(n) + (int(j) if with_jitter else 0)] = True
  return out


def assert_no_leak(config):
  train = covered(storage.data_source(config.data, "train"), with_jitter=True)
  for held in ("validation", "test"):
    for rid, mask in covered(storage.data_source(config.data, held), with_jitter=False).items():
      if rid in train:
        assert not (mask & train[rid]).any(), f"{held} nucleotides of {rid} inside a training window"


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
  d = tmp_path_factory.mktemp("genome")
  path = str(d / "g.fa")
  return path, long_records(path)


@pytest.mark.parametrize("split_by", ["blocks", "record", "bed"])
def test_no_test_nucleotide_inside_a_training_window(tmp_path, genome, split_by):
  path, recs = genome
  extra = {}
  if split_by == "bed":
    bed = tmp_path / "s.bed"
    bed.write_text("chr0\t0\t60000\ttrain\nchr0\t60000\t90000\ttest\nchr0\t90000\t120000\tvalidation\n"
                   "chr1\t0\t80000\ttrain\nchr2\t100\t45000\ttest\n")
    extra = dict(split_bed=str(bed))
  config = window_config(tmp_path, path, split_by=split_by, **extra)
  assert_no_leak(config)
  counts = {s: len(storage.data_source(config.data, s)) for s in storage.SPLITS}
  assert all(counts.values()), counts


def test_file_split_over_several_files_prepared_in_parallel(tmp_path, genome):
  path, recs = genome
  files = [path] + [str(tmp_path / f"other{i}.fa") for i in range(5)]
  other = [long_records(f, seed=i + 1, lengths=(8_000, 3_000)) for i, f in enumerate(files[1:])]
  config = window_config(tmp_path, ",".join(files), split_by="file", val_fraction=0.3, test_fraction=0.3)
  store = storage.prepare(config.data)
  by_split = {sp: set(store.index["record_file"][storage.data_source(config.data, sp).record].tolist())
              for sp in storage.SPLITS}
  assert all(by_split.values())
  assert sum(len(v) for v in by_split.values()) == len(set().union(*by_split.values()))  # a file in one split
  assert len(store.record_ids) == len(recs) + 2 * len(other)  # another file's chr0 is its own record
  src = storage.data_source(config.data, "test")
  for i in range(0, len(src), 13):  # content comes from the right file
    ex = src[i]
    rid, span = ex["gene_id"].rsplit(":", 1)
    a, b = map(int, span.split("-"))
    f = int(src.store.index["record_file"][int(src.record[i])])
    want = (recs if f == 0 else other[f - 1])[rid][a:b].upper()
    assert ex["sequence"] == want


def test_windows_hold_the_records_slices_and_tile_held_out_segments_once(tmp_path, genome):
  path, recs = genome
  config = window_config(tmp_path, path)
  for split in storage.SPLITS:
    src = storage.data_source(config.data, split)
    for i in range(0, len(src), 37):
      ex = src[i]
      rid, span = ex["gene_id"].rsplit(":", 1)
      a, b = map(int, span.split("-"))
      assert ex["sequence"] == recs[rid][a:b].upper() and ex["length"] == b - a <= 1000
  test = storage.data_source(config.data, "test")
  # Disjoint tiling: every held-out position at most once, so no nucleotide is scored twice.
  total = sum(int(m.sum()) for m in covered(test, False).values())
  assert total == int(test.lengths.sum())


def test_training_windows_move_between_epochs_inside_their_segment(tmp_path, genome):
  path, recs = genome
  config = window_config(tmp_path, path)
  src = storage.data_source(config.data, "train")
  moved = 0
  for i in range(0, len(src), 11):
    e0, e1 = src.epoch_tokens(i, 0, 0), src.epoch_tokens(i, 1, 0)
    moved += not np.array_equal(e0, e1)
    assert e1.size == src.lengths[i]
  assert moved > 0.8 * len(range(0, len(src), 11))
  starts = windows.jittered(src.start, src.jitter, 0, 3, np.arange(len(src)))
  assert (starts >= src.start).all() and (starts <= src.start + src.jitter).all()


def test_n_runs_cut_and_n_fraction_filter(tmp_path, genome):
  path, recs = genome
  cut = window_config(tmp_path, path, n_run_cut=500)
  for split in storage.SPLITS:
    for ex in storage.load_records(cut.data, split):
      assert "N" * 500 not in ex.sequence
  strict = window_config(tmp_path, path, max_n_fraction=0.0)
  for split in storage.SPLITS:
    assert all("N" not in r.sequence for r in storage.load_records(strict.data, split))


def test_softmask_weight_and_reverse_complement_in_training_batches(tmp_path, genome):
  path, recs = genome
  config = window_config(tmp_path, path, softmask_weight=0.25, reverse_complement=True)
  data = batching.TrainBatches(config.data, 8, seed=0)
  weights = set()
  flipped = 0
  for step in range(12):
    batch = data._batch(step)
    weights |= set(np.unique(batch["mask"]).tolist())
    assert batch["nucleotides"].sum() == (batch["targets"] > 0).sum()
  assert {0.25, 1.0} <= weights
  src = data.src
  rows = data._epoch_plan(0)[0]
  seqs = [genome_store_string(src, int(j)) for j in rows]
  got = [batching.make_batch([s], 1024)["targets"][0] for s in seqs]
  batch = data._batch(0)
  flips = windows.flipped(0, 0, rows)
  for r, (s, f) in enumerate(zip(seqs, flips)):
    want = batching.reverse_complement(s) if f else s
    np.testing.assert_array_equal(batch["targets"][r, :len(want)], batching.make_batch([want], 1024)["targets"][0, :len(want)])
    flipped += bool(f)
  assert 0 < flipped < len(rows) or len(rows) < 4


def genome_store_string(src, j):
  from dnagen_jax.data import tokens
  return tokens.token_string(src.epoch_tokens(j, 0, 0))


def test_gene_setup_unchanged(tfds_dir, tmp_path):
  """At their defaults the new fields change no name, split, token or batch of a gene data set."""
  rng = np.random.default_rng(0)
  path = tmp_path / "genes.fa"
  path.write_text("".join(f">g{i}\n{''.join(rng.choice(list('ACGT'), rng.integers(20, 60)))}\n" for i in range(300)))
  new = default.get_config()
  new.data.update(data_dir=tfds_dir, source="files", files=str(path), max_length=100)
  old = default.get_config()
  old.data.update(data_dir=tfds_dir, source="files", files=str(path), max_length=100)
  for f in NEW_FIELDS:
    del old.data[f]
  assert not storage.windowed(new.data) and not storage.windowed(old.data)
  settings = storage.gene_settings(old.data)
  assert storage.dataset_name(new.data) == gdb.make_config(**settings).name == storage.dataset_name(old.data)
  for split in storage.SPLITS:
    assert storage.load_records(new.data, split) == storage.load_records(old.data, split)
    assert [c for c in storage.sequence_chunks(new.data, split)] == [[r.sequence for r in storage.load_records(old.data, split)]]
  a, b = batching.TrainBatches(new.data, 8, 0), batching.TrainBatches(old.data, 8, 0)
  for step in (0, 5, 40):
    for k, v in a._batch(step).items():
      np.testing.assert_array_equal(v, b._batch(step)[k])


def test_split_perplexity_equals_scoring_the_list(tfds_dir, tmp_path):
  from dnagen_jax import scoring
  from dnagen_jax.training import trainer
  config = default.get_config()
  config.data.update(data_dir=tfds_dir, synthetic_sizes=(40, 10, 10))
  scorer = scoring.OracleScorer(storage.oracle_source(config.data))
  test = [r.sequence for r in storage.load_records(config.data, "test")]
  assert trainer.split_perplexity(scorer, config.data, "test") == scorer.perplexity(test)


def test_old_workdir_config_resumes(tmp_path):
  config = default.get_config()
  old = json.loads(config.to_json_best_effort())
  for f in NEW_FIELDS:
    del old["data"][f]
  (tmp_path / "config.json").write_text(json.dumps(old))
  config_check.write_or_check_workdir_config(config, str(tmp_path))  # no error: same run
  config.data.window, config.data.stride = 500, 500
  with pytest.raises(UserError, match="data.window: 0 -> 500"):
    config_check.write_or_check_workdir_config(config, str(tmp_path))


def _prepared(tmp_path):
  root = genome_store.root(str(tmp_path))
  return sorted(os.listdir(root)) if os.path.isdir(root) else []


@pytest.mark.parametrize("setup,message", [
    (dict(window=2000, stride=2000), r"data.window=2000 needs 2001 tokens .*max_len is 1024"),
    (dict(stride=0), r"data.stride=0 must be in 1..data.window=1000"),
    (dict(stride=1001), r"data.stride=1001 must be in 1..data.window=1000"),
    (dict(split_by="bed"), r"split_by='bed' needs config.data.split_bed"),
])
def test_config_errors_one_line(tmp_path, setup, message):
  config = default.get_config()
  config.data.window, config.data.stride = 1000, 1000
  config.data.update(setup)
  with pytest.raises(UserError, match=message) as e:
    config_check.validate(config)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("case,message", [
    ("absent_bed_record", r"s.bed: names record 'chrZ', which none of the files holds"),
    ("only_n", r"n.fa: holds only N"),
    ("all_filtered", r"every window was filtered out"),
    ("truncated", r"g.fa.gz: truncated gzip file"),
])
def test_bad_inputs_one_line_and_nothing_left_prepared(tmp_path, genome, case, message):
  import gzip
  path, _ = genome
  extra = {}
  if case == "absent_bed_record":
    (tmp_path / "s.bed").write_text("chr0\t0\t50000\ttrain\nchr0\t50000\t60000\ttest\nchrZ\t0\t10\tvalidation\n")
    extra = dict(split_by="bed", split_bed=str(tmp_path / "s.bed"))
  elif case == "only_n":
    path = str(tmp_path / "n.fa")
    open(path, "w").write(">a\n" + "N" * 5000 + "\n>b\nNNNN\n")
  elif case == "all_filtered":
    extra = dict(min_length=1001)
  elif case == "truncated":
    data = gzip.compress(open(path, "rb").read())
    path = str(tmp_path / "g.fa.gz")
    open(path, "wb").write(data[: len(data) // 3])
  config = window_config(tmp_path / "tfds", path, **extra)
  with pytest.raises(UserError, match=message) as e:
    storage.data_source(config.data, "train")
  assert "\n" not in str(e.value)
  assert [p for p in _prepared(tmp_path / "tfds") if not p.endswith(".lock")] == []


def test_interrupted_preparation_is_not_trusted(tmp_path, genome, monkeypatch):
  path, _ = genome
  config = window_config(tmp_path, path)

  def boom(*a, **k):
    raise KeyboardInterrupt
  monkeypatch.setattr(genome_store, "_build", boom)
  with pytest.raises(KeyboardInterrupt):
    storage.prepare(config.data)
  assert [p for p in _prepared(tmp_path) if not p.endswith(".lock")] == []
  monkeypatch.undo()
  assert len(storage.data_source(config.data, "test")) > 0


def test_real_genome_blocks_without_leakage(tmp_path):
  path = os.path.join(GENOMES, "yeast_chrI.fa.gz")
  if not os.path.exists(path):
    pytest.skip("../shared/data/genomes not present")
  config = window_config(tmp_path, path, block_size=20_000)
  assert_no_leak(config)
  total = sum(int(storage.data_source(config.data, s).lengths.sum()) for s in ("validation", "test"))
  assert 0 < total < 230_208


def test_study_on_windows_nested_whole_blocks(tmp_path, genome):
  """--mode=study on a windowed data set: nested sizes of whole blocks, k-mer tokens on windows."""
  import ml_collections
  from dnagen_jax.data import subsets
  from dnagen_jax.study import runner
  path, _ = genome
  base = window_config(tmp_path / "tfds", path).data
  study = ml_collections.ConfigDict()
  study.name = "windows"
  study.data = ml_collections.ConfigDict(dict(
      data_dir=base.data_dir, source="files", files=path, unknown_policy="n", window=1000, stride=1000,
      block_size=10_000, val_fraction=0.2, test_fraction=0.2, n_run_cut=1, max_n_fraction=0.0))
  study.fractions, study.nucleotides = (), (20_000, 60_000)
  study.target_losses, study.bootstrap, study.fit_seed = (2.1,), 20, 0
  study.families = ml_collections.ConfigDict({"kn": dict(
      config="configs/ngram.py", overrides={}, kmers=(1, 2), seeds=(0,), budget="", ngram_orders=(2,))})
  out = runner.run(study, str(tmp_path / "study"))
  rows = out["rows"]
  assert len(rows) == 4 and all(r["test_bits_per_nt"] > 1.9 for r in rows)  # random sequence: ~2 bits/nt
  # The subsets themselves: nested, made of whole blocks, at least D nucleotides.
  cfg = window_config(tmp_path / "tfds", path, **{k: study.data[k] for k in (
      "unknown_policy", "window", "stride", "block_size", "n_run_cut", "max_n_fraction")}).data
  full = storage.data_source(cfg, "train")
  keys = np.asarray(full.block_keys(cfg.block_size))
  previous = set()
  for d in (5_000, 20_000, 60_000, 120_000):
    idx = subsets.block_prefix_indices(keys, full.lengths, d)
    blocks = set(keys[idx])
    assert previous <= blocks and full.lengths[idx].sum() >= d
    assert np.isin(keys, list(blocks)).sum() == idx.size  # every window of a chosen block
    previous = blocks


def test_window_batches_are_a_function_of_the_step(tmp_path, genome):
  """A resumed run reads the same shifted windows: batch s depends on (seed, s) alone."""
  path, _ = genome
  config = window_config(tmp_path, path, reverse_complement=True)
  a, b = batching.TrainBatches(config.data, 8, seed=3), batching.TrainBatches(config.data, 8, seed=3)
  steps = (a.batches_per_epoch + 2, 1, 0)  # out of order, across an epoch boundary
  for step in steps:
    np.testing.assert_array_equal(a._batch(step)["targets"], b._batch(step)["targets"])
  assert not np.array_equal(a._batch(0)["targets"], a._batch(a.batches_per_epoch)["targets"])
