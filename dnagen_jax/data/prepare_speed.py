"""Times the preparation of a windowed data set: wall and CPU seconds, peak memory.

  python -m dnagen_jax.data.prepare_speed FILES DATA_DIR [WINDOW]

FILES: data.files (files, folders, globs); DATA_DIR: an empty folder to
prepare into (a data set already there is not prepared again). The data
block is configs/default.py's with unknown_policy='n', window=stride=WINDOW
(default 1000) and n_run_cut=100. CPU time counts every thread of the
process; on a loaded machine it, not the wall time, is the figure to scale
from (docs/data.md#rate-memory-and-disk).
"""

from __future__ import annotations

import resource
import sys
import time


def _cpu_seconds() -> float:
  s = resource.getrusage(resource.RUSAGE_SELF)
  return s.ru_utime + s.ru_stime


def main(argv) -> None:
  import os  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.getcwd())
  from configs import default  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  if len(argv) < 3:
    sys.exit(__doc__)
  window = int(argv[3]) if len(argv) > 3 else 1000
  d = default.get_config().data
  d.source, d.files, d.unknown_policy, d.data_dir = "files", argv[1], "n", argv[2]
  d.window, d.stride, d.n_run_cut = window, window, 100
  t, c = time.time(), _cpu_seconds()
  store = storage.prepare(d)
  wall, cpu = time.time() - t, _cpu_seconds() - c
  n = store.meta["nucleotides"]
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
  print(f"{n:,} nt: wall {wall:.1f} s = {n / wall / 1e6:.1f} M nt/s; CPU {cpu:.2f} s = "
        f"{n / cpu / 1e6:.1f} M nt per CPU-second; peak RSS {rss:.2f} GB; {store.meta['counts']}")


if __name__ == "__main__":
  main(sys.argv)
