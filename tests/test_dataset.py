"""The TFDS gene data set: synthetic oracle, files config, dedup, filter, stable splits."""

import collections
import os

import numpy as np
import pytest

from configs import default
from dnagen_jax.data import storage
from dnagen_jax.data import batching
from dnagen_jax.data import synthetic
from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb


def files_config(tfds_dir, files):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.data.source = "files"
  config.data.files = ",".join(files)
  config.data.min_length = 3
  config.data.max_length = 50
  config.data.val_fraction = 0.25
  config.data.test_fraction = 0.25
  return config


def random_fasta(path, n, seed, extra=""):
  rng = np.random.default_rng(seed)
  with open(path, "w") as f:
    for i in range(n):
      f.write(f">g{seed}_{i}\n{''.join(rng.choice(list('ACGT'), rng.integers(5, 40)))}\n")
    f.write(extra)
  return str(path)


def test_synthetic_oracle_is_exact():
  src = synthetic.MarkovSource(order=2, alpha=1.0, seed=3, min_length=20, max_length=40)
  seq = src.sample(1, seed=0)[0]
  # Direct product of the transition probabilities, padding contexts with the start symbol.
  sym = ["ACGT".index(c) for c in seq]
  ctx, ll = [4, 4], 0.0
  for s in sym:
    ll += np.log(src.probs[ctx[0], ctx[1], s])
    ctx = [ctx[1], s]
  assert src.log_likelihood(seq) == pytest.approx(ll, rel=1e-12)
  assert src.sample(3, seed=5) == src.sample(3, seed=5)


def test_synthetic_dataset_and_oracle(tfds_dir):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.data.synthetic_sizes = (20, 5, 5)
  recs = storage.load_records(config.data, "test")
  assert len(recs) == 5 and all(200 <= len(r.sequence) <= 1000 for r in recs)
  oracle = storage.oracle_perplexity(config.data, "test")
  assert 2.0 < oracle < 4.0


def test_files_dedup_filter_and_stable_split(tfds_dir, tmp_path):
  a = random_fasta(tmp_path / "a.fa", 200, 0, extra=">dup\n" + "A" * 10 + "\n>dup2\n" + "A" * 10 + "\n>long\n" + "C" * 60 + "\n")
  b = random_fasta(tmp_path / "b.fa", 100, 1)
  only_a = {s: {r.sequence for r in storage.load_records(files_config(tfds_dir, [a]).data, s)}
            for s in storage.SPLITS}
  both = {s: {r.sequence for r in storage.load_records(files_config(tfds_dir, [a, b]).data, s)}
          for s in storage.SPLITS}
  all_a = set().union(*only_a.values())
  assert "A" * 10 in all_a and "C" * 60 not in all_a          # dedup keeps one; filter drops long
  counts = collections.Counter(s for v in only_a.values() for s in v)
  assert max(counts.values()) == 1                            # no gene in two splits
  for s in storage.SPLITS:                             # adding b moves none of a's genes
    assert only_a[s] <= both[s]
  assert len(both["test"]) > len(only_a["test"])


def test_split_of_is_a_function_of_the_sequence():
  assert gdb.split_of("ACGTACGT", 0.1, 0.1) == gdb.split_of("ACGTACGT", 0.1, 0.1)
  splits = collections.Counter(gdb.split_of(f"ACGT{i}", 0.1, 0.1) for i in range(5000))
  assert 400 < splits["test"] < 600 and 400 < splits["validation"] < 600


def test_train_batches_resume_and_layout(tfds_dir):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.data.synthetic_sizes = (20, 5, 5)
  data = batching.TrainBatches(config.data, batch_size=4, seed=0)
  it = data.iterator()
  first = [next(it) for _ in range(7)]
  it1 = data.iterator()
  for _ in range(5):
    next(it1)
  it2 = data.iterator()
  it2.set_state(it1.get_state())  # what a checkpoint stores and a resumed run restores
  np.testing.assert_array_equal(next(it2)["inputs"], first[5]["inputs"])
  b = first[0]
  assert (b["inputs"][:, 0] == 1).all()                                  # BOS first
  np.testing.assert_array_equal(b["inputs"][:, 1:] * (b["mask"][:, 1:] > 0),
                                b["targets"][:, :-1] * (b["mask"][:, 1:] > 0))  # shifted by one
  assert b["inputs"].shape[1] in config.data.length_buckets


def test_train_batches_are_length_sorted_and_cover_each_gene_once(tfds_dir):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.data.synthetic_sizes = (70, 5, 5)
  config.data.sort_noise = 0.0
  data = batching.TrainBatches(config.data, batch_size=8, seed=0)
  plan = data._epoch_plan(0)                                  # pylint: disable=protected-access
  assert plan.shape == (8, 8) and len(set(plan.ravel())) == 64   # each gene at most once
  spans = sorted((data.lengths[b].min(), data.lengths[b].max()) for b in plan)
  assert all(hi <= lo for (_, hi), (lo, _) in zip(spans, spans[1:]))  # strict sort: no overlap
  assert 0.0 <= data.padded_fraction() < 0.5
  config.data.sort_noise = 1000.0                             # noise >> lengths: shuffled batches
  noisy = batching.TrainBatches(config.data, batch_size=8, seed=0)
  assert noisy.padded_fraction() > data.padded_fraction()
  assert not np.array_equal(np.sort(noisy._epoch_plan(0), 1), np.sort(noisy._epoch_plan(1), 1))


def test_fit_buckets_is_the_least_padding_choice():
  """Against brute force over every choice of k buckets among the candidate lengths."""
  import itertools  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for _ in range(20):
    lengths = rng.integers(1, 200, rng.integers(1, 12))
    k = int(rng.integers(1, 5))
    cand = sorted(set(-(-lengths // 8) * 8))
    padded = lambda bs: sum(min(b for b in bs if b >= x) for x in lengths)
    best = min(padded(c + (cand[-1],)) for r in range(min(k, len(cand)))
               for c in itertools.combinations(cand[:-1], r))
    got = batching.fit_buckets(lengths, k)
    assert len(got) <= k and got[-1] >= lengths.max() and all(b % 8 == 0 for b in got)
    assert padded(got) == best


def test_prepared_data_keeps_its_name_and_place(tfds_dir):
  """Data sets prepared by earlier versions stay where the builder looks: data_dir/gene_dataset/<setting>/1.0.0."""
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.data.synthetic_sizes = (20, 5, 5)
  builder = storage.prepare(config.data)
  assert builder.name == "gene_dataset"
  assert os.path.realpath(builder.data_dir) == os.path.realpath(
      os.path.join(tfds_dir, "gene_dataset", builder.builder_config.name, "1.0.0"))
  assert builder.builder_config.name.startswith("synthetic-")
