"""Test setup: 8 simulated CPU devices, a persistent compile cache, shared data paths."""

import os
import sys

# Must be set before jax is imported anywhere: tests of data parallelism need devices.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")


def _accelerator_run() -> bool:
  """`pytest -m accelerator ...` on a machine with a GPU or TPU: JAX may then use it."""
  import glob  # pylint: disable=g-import-not-at-top
  expr = " ".join(sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "-m")
  device = glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*")
  return "accelerator" in expr and "not accelerator" not in expr and bool(device)


if not _accelerator_run():  # otherwise every test runs on the (8 simulated) CPU devices
  os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # so that `configs` imports in tests

# A warm run reuses compiled programs: cuts the suite's compile time several-fold.
jax.config.update("jax_compilation_cache_dir", os.path.join(ROOT, ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

GENES_CSV = os.path.join(ROOT, "..", "shared", "data", "human_genes", "genes.csv")


@pytest.fixture(scope="session")
def genes_csv():
  """Path of the shared real genes; skips the test where ../shared is absent."""
  if not os.path.exists(GENES_CSV):
    pytest.skip("../shared/data/human_genes/genes.csv not present")
  return os.path.abspath(GENES_CSV)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  """One TFDS data dir per test session, so prepared data sets are shared."""
  return str(tmp_path_factory.mktemp("tfds"))


_SUITE_START = []


def pytest_sessionstart(session):  # pylint: disable=unused-argument
  import time  # pylint: disable=g-import-not-at-top
  _SUITE_START.append(time.monotonic())


def pytest_terminal_summary(terminalreporter):
  """The suite's wall time on its last line: the README promises under 10 minutes on 2 cores."""
  import time  # pylint: disable=g-import-not-at-top
  if _SUITE_START:
    terminalreporter.write_line(f"suite wall time: {time.monotonic() - _SUITE_START[0]:.0f} s "
                                "(README: under 10 minutes on 2 cores)")
