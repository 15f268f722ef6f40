"""Per-process input: each process builds only its own rows of every global batch."""

import numpy as np
import pytest

from dnagen_jax.data import batching
from dnagen_jax.data import storage
from tests import cluster_runs
from tests.helpers import tiny_config


def test_row_shares_put_together_are_the_global_batches(tfds_dir):
  config = tiny_config(tfds_dir)
  config.data.length_buckets = tuple(range(8, 129, 8))
  storage.prepare(config.data)
  whole = batching.TrainBatches(config.data, 8, 0).iterator()
  shares = [batching.TrainBatches(config.data, 8, 0, rows=(r, r + 4)).iterator() for r in (0, 4)]
  lengths = set()
  for _ in range(10):  # more than one epoch (8 batches of 8 from 64 genes)
    full = next(whole)
    parts = [next(it) for it in shares]
    for key in ("inputs", "targets", "mask"):
      np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), full[key])
    assert all(int(p["nucleotides_total"]) == int(full["mask"].sum()) for p in parts)
    assert all(int(p["tokens_total"]) == full["mask"].size for p in parts)
    lengths.add(full["inputs"].shape[1])
  assert len(lengths) > 1  # the shares agreed on every length, not just one


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path, tmp_path_factory):
  """launch/local.py: 2 processes x 2 devices, each building its own rows, = 1 process x 4 devices."""
  reference = cluster_runs.reference_workdir(tmp_path_factory)
  workdir = str(tmp_path / "two")
  cluster_runs.run(cluster_runs.local_command(
      2, 2, cluster_runs.tiny_flags(workdir, cluster_runs.shared_data_dir(tmp_path_factory))))
  cluster_runs.assert_same_run(workdir, reference)
