"""Windowed data sets: records streamed once into array_record token chunks, windows as an index.

Preparation (`prepare`) reads each input file one record at a time
(`sources`), writes its tokens (one byte per nucleotide, `tokens.LOWER` set
on soft-masked bases) to array_record files of CHUNK-byte records, and keeps
only the windows' coordinates (`splits`, `windows`). Files are prepared in
parallel, one thread per core (decompression and numpy release the GIL); a
single file overlaps its decompression (a thread) with the rest. Everything is written into a temporary folder that is
renamed into place when complete, so a failed or interrupted preparation
leaves nothing that a later run would trust.

Layout under data_dir/genome_windows/<name>/ (name = 'w-' + hash of the settings):
  tokens-FFFFF-SSSSS.array_record  the records of input file F, concatenated, in CHUNK-byte records
  index.npz   records (file, offset, length) and, per split, the windows
              (record, start, length, jitter, block)
  meta.json   the settings, record ids and counts; written last

`WindowSource` reads a split's windows by random access (len, [i]), like
`tfds.data_source`, without building the split in memory.
"""

from __future__ import annotations

import collections
import concurrent.futures
import fcntl
import hashlib
import json
import os
import queue
import shutil
import threading

import numpy as np

from dnagen_jax.data import sequence_io
from dnagen_jax.data import sources
from dnagen_jax.data import splits
from dnagen_jax.data import tokens
from dnagen_jax.data import windows
from dnagen_jax.errors import UserError

CHUNK = 1 << 16                 # bytes (nucleotides) per array_record record
SHARD_CHUNKS = 1 << 13          # chunks per array_record file (512 MiB)
WRITER_OPTIONS = "group_size:1,uncompressed"  # one chunk per read; see docs/data.md for zstd
VERSION = 1


def settings(data_config) -> dict:
  """What decides a windowed data set's content (its name hashes these)."""
  tokens.check_policy(data_config.unknown_policy)
  if data_config.source != "files":
    raise UserError(f"data.window={data_config.window} and data.split_by cut files into windows: "
                    "set data.source='files' and data.files")
  window, stride = int(data_config.window), int(data_config.stride)
  if window < 0 or (window > 0 and not 1 <= stride <= window):  # config_check says it first for trained configs
    raise UserError(f"config.data.stride={stride} must be in 1..data.window={window} (and the window >= 0)")
  files = tuple(os.path.abspath(f) for f in sequence_io.expand_paths(data_config.files or ""))
  rule = splits.resolve(data_config.split_by, int(data_config.window))
  out = dict(version=VERSION, files=files,
             stat=[(os.path.getsize(f), int(os.path.getmtime(f))) for f in files],
             min_length=int(data_config.min_length), max_length=int(data_config.max_length),
             unknown_policy=data_config.unknown_policy,
             val_fraction=float(data_config.val_fraction), test_fraction=float(data_config.test_fraction),
             window=int(data_config.window), stride=int(data_config.stride), split_by=rule,
             block_size=int(data_config.block_size),
             max_n_fraction=float(data_config.max_n_fraction), n_run_cut=int(data_config.n_run_cut))
  if rule == "bed":
    bed = os.path.abspath(os.path.expanduser(data_config.split_bed or ""))
    if not data_config.split_bed or not os.path.exists(bed):
      raise UserError(f"data.split_by='bed' needs data.split_bed, a BED file: {data_config.split_bed!r} not found")
    out.update(split_bed=bed, bed_stat=(os.path.getsize(bed), int(os.path.getmtime(bed))))
  return out


def name(s: dict) -> str:
  return "w-" + hashlib.sha1(json.dumps(s, sort_keys=True, default=list).encode()).hexdigest()[:10]


def root(data_dir: str) -> str:
  return os.path.join(data_dir, "genome_windows")


def prepare(data_config, data_dir: str) -> str:
  """Prepares (once) the windowed data set of `data_config`; returns its folder."""
  s = settings(data_config)
  final = os.path.join(root(data_dir), name(s))
  os.makedirs(root(data_dir), exist_ok=True)
  with open(os.path.join(root(data_dir), f".prepare-{name(s)}.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # jobs started together: the first prepares, the others wait
    if os.path.exists(os.path.join(final, "meta.json")):
      return final
    tmp = os.path.join(root(data_dir), f".{name(s)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
      _build(s, tmp)
      os.rename(tmp, final)
    except BaseException:
      shutil.rmtree(tmp, ignore_errors=True)
      raise
  return final


class _StreamWriter:
  """One input file's tokens, concatenated, as CHUNK-byte array_record records in shards."""

  def __init__(self, folder: str, file_index: int):
    self.folder, self.file_index = folder, file_index
    self.offset, self.buffer, self.shards, self.writer, self.in_shard = 0, bytearray(), [], None, 0

  def write(self, toks: np.ndarray) -> int:
    start = self.offset
    self.buffer += toks.tobytes()
    self.offset += toks.size
    self._flush(final=False)
    return start

  def _flush(self, final: bool):
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    view, pos = memoryview(self.buffer), 0
    while len(view) - pos >= CHUNK or (final and pos < len(view)):
      if self.writer is None or self.in_shard == SHARD_CHUNKS:
        if self.writer is not None:
          self.writer.close()
        shard = f"tokens-{self.file_index:05d}-{len(self.shards):05d}.array_record"
        self.shards.append(shard)
        self.writer = array_record_module.ArrayRecordWriter(os.path.join(self.folder, shard), WRITER_OPTIONS)
        self.in_shard = 0
      self.writer.write(bytes(view[pos:pos + CHUNK]))
      pos += CHUNK
      self.in_shard += 1
    view.release()
    del self.buffer[:pos]

  def close(self) -> list[str]:
    self._flush(final=True)
    if self.writer is not None:
      self.writer.close()
    return self.shards


def _prefetched(it, depth: int = 2):
  """Runs iterator `it` in a thread, `depth` items ahead (decompression releases the GIL)."""
  q: queue.Queue = queue.Queue(depth)
  done = object()

  def run():
    try:
      for item in it:
        q.put(item)
      q.put(done)
    except BaseException as e:  # pylint: disable=broad-except
      q.put(e)

  threading.Thread(target=run, daemon=True).start()
  while True:
    item = q.get()
    if item is done:
      return
    if isinstance(item, BaseException):
      raise item
    yield item


def _token_records(path: str, policy: str, prefetch: bool):
  """(id, uint8 tokens) of each record of a CSV or FASTA file, streamed."""
  if sequence_io.file_kind(path) == "csv":
    for rec in sequence_io.read_csv(path, policy):  # normalized already: upper-case ACGTN
      yield rec.record_id, tokens.BYTE_TOKENS["n"][np.frombuffer(rec.sequence.encode(), np.uint8)]
    return
  blocks = _prefetched(sources.read_blocks(path)) if prefetch else None
  records = sources.fasta_raw_records(path, blocks=blocks)
  for rid, _, raw in records:
    toks = sources.encode_record(raw, policy, f"{path}: record {rid}")
    if toks is not None:
      yield rid, toks


def prepare_file(file_index: int, path: str, folder: str, s: dict, bed: dict | None,
                 prefetch: bool = False) -> dict:
  """Writes one input file's tokens and returns its records and windows (run in a worker)."""
  writer = _StreamWriter(folder, file_index)
  rule, window, stride = s["split_by"], s["window"], s["stride"]
  records, out = [], {sp: collections.defaultdict(list) for sp in splits.SPLITS}
  informative = False
  cfg = _Cfg(s)
  for rid, toks in _token_records(path, s["unknown_policy"], prefetch):
    length = int(toks.size)
    offset = writer.write(toks)
    r = len(records)
    records.append((rid, offset, length))
    n_pos = windows.n_positions(toks)
    informative |= n_pos.size < length
    key = tokens.token_string(toks).encode() if rule == "hash" else b""
    intervals = splits.record_splits(rule, rid, os.path.basename(path), key, length, cfg, bed)
    runs = windows.n_runs(n_pos, s["n_run_cut"])
    for split, arr in splits.as_arrays(intervals).items():
      for a, b in (windows.subtract(arr, runs) if len(runs) else arr):
        if split == "train":
          starts, lengths, jitter = windows.train_tiles(int(a), int(b), window, stride)
        else:
          starts, lengths = windows.eval_tiles(int(a), int(b), window)
          jitter = np.zeros_like(starts)
        keep = lengths >= s["min_length"]
        if window == 0:
          keep &= lengths <= s["max_length"]
        if s["max_n_fraction"] < 1.0:
          keep &= windows.n_counts(n_pos, starts, lengths) <= s["max_n_fraction"] * lengths
        o = out[split]
        o["record"].append(np.full(int(keep.sum()), r, np.int64))
        o["start"].append(starts[keep])
        o["length"].append(lengths[keep])
        o["jitter"].append(jitter[keep])
  if records and not informative:
    raise UserError(f"{path}: holds only N (no A, C, G or T in {len(records)} record(s))")
  if not records:
    raise UserError(f"{path}: no sequences found")
  shards = writer.close()
  cat = {sp: {k: np.concatenate(o[k]) if o[k] else np.zeros(0, np.int64)
              for k in ("record", "start", "length", "jitter")} for sp, o in out.items()}
  return {"records": records, "shards": shards, "windows": cat, "nucleotides": writer.offset}


class _Cfg:
  """The few data-config fields `splits.record_splits` reads, from the settings dict."""

  def __init__(self, s: dict):
    self.val_fraction, self.test_fraction = s["val_fraction"], s["test_fraction"]
    self.block_size, self.split_bed = s["block_size"], s.get("split_bed", "")


def _build(s: dict, folder: str) -> None:
  files = list(s["files"])
  bed = splits.read_bed(s["split_bed"]) if s["split_by"] == "bed" else None
  jobs = [(i, f, folder, s, bed) for i, f in enumerate(files)]
  workers = min(len(files), os.cpu_count() or 1, 8)
  if workers > 1:
    # Threads, not processes: decompression (zlib, lzma) and numpy's table look-ups
    # release the GIL, and threads need no re-import of the caller's main module
    # (which a spawned process does, and a script without a __main__ guard would deadlock on the lock).
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      parts = list(pool.map(lambda job: prepare_file(*job), jobs))
  else:
    parts = [prepare_file(*jobs[0], prefetch=True)]
  ids, rec_file, rec_offset, rec_length = [], [], [], []
  index = {sp: collections.defaultdict(list) for sp in splits.SPLITS}
  for i, part in enumerate(parts):
    base = len(ids)
    for rid, offset, length in part["records"]:
      ids.append(rid)
      rec_file.append(i)
      rec_offset.append(offset)
      rec_length.append(length)
    for sp, w in part["windows"].items():
      for k, v in w.items():
        index[sp][k].append(v + base if k == "record" else v)
  if bed is not None:
    absent = sorted(set(bed) - set(ids))
    if absent:
      raise UserError(f"{s['split_bed']}: names record {absent[0]!r}, which none of the files holds"
                      f"{f' (and {len(absent) - 1} more)' if len(absent) > 1 else ''}")
  arrays = {"record_file": np.asarray(rec_file, np.int32), "record_offset": np.asarray(rec_offset, np.int64),
            "record_length": np.asarray(rec_length, np.int64)}
  counts = {}
  for sp in splits.SPLITS:
    for k in ("record", "start", "length", "jitter"):
      arrays[f"{sp}_{k}"] = np.concatenate(index[sp][k]).astype(np.int64)
    counts[sp] = {"windows": int(arrays[f"{sp}_start"].size), "nucleotides": int(arrays[f"{sp}_length"].sum())}
  where = files[0] + (f" (and {len(files) - 1} more files)" if len(files) > 1 else "")
  if not any(c["windows"] for c in counts.values()):
    raise UserError(f"{where}: every window was filtered out (data.min_length="
                    f"{s['min_length']}, data.max_n_fraction={s['max_n_fraction']}, data.n_run_cut="
                    f"{s['n_run_cut']}); loosen these filters")
  for sp, c in counts.items():
    if not c["windows"]:
      raise UserError(f"{where}: the {sp} split has no windows (split_by={s['split_by']}, "
                      f"val/test fractions {s['val_fraction']}/{s['test_fraction']}, block_size "
                      f"{s['block_size']}): too few records or blocks for every split; name each "
                      f"record's split in a BED file (split_by='bed') or use split_by='blocks'")
  np.savez(os.path.join(folder, "index.npz"), **arrays)
  meta = {"settings": s, "record_ids": ids, "shards": [p["shards"] for p in parts], "chunk": CHUNK,
          "counts": counts, "nucleotides": int(sum(p["nucleotides"] for p in parts))}
  with open(os.path.join(folder, "meta.json"), "w") as f:
    json.dump(meta, f, default=list)


class Store:
  """A prepared windowed data set: its index and random access to its tokens."""

  def __init__(self, folder: str):
    from array_record.python import array_record_data_source  # pylint: disable=g-import-not-at-top
    self.folder = folder
    with open(os.path.join(folder, "meta.json")) as f:
      self.meta = json.load(f)
    with np.load(os.path.join(folder, "index.npz")) as z:
      self.index = {k: z[k] for k in z.files}
    self.settings = self.meta["settings"]
    self.record_ids = self.meta["record_ids"]
    self.chunk = int(self.meta["chunk"])
    self._streams = [array_record_data_source.ArrayRecordDataSource(
        [os.path.join(folder, s) for s in shards]) if shards else None for shards in self.meta["shards"]]
    self._cache: collections.OrderedDict = collections.OrderedDict()

  def _chunk(self, stream: int, c: int) -> bytes:
    key = (stream, c)
    if key in self._cache:
      self._cache.move_to_end(key)
      return self._cache[key]
    data = self._streams[stream][c]
    self._cache[key] = data
    if len(self._cache) > 8:
      self._cache.popitem(last=False)
    return data

  def tokens(self, record: int, start: int, length: int) -> np.ndarray:
    """uint8 tokens [length] of `record` from `start` (LOWER bit on soft-masked bases)."""
    stream = int(self.index["record_file"][record])
    a = int(self.index["record_offset"][record]) + start
    b = a + length
    parts = [self._chunk(stream, c) for c in range(a // self.chunk, (b - 1) // self.chunk + 1)]
    buf = b"".join(parts) if len(parts) > 1 else parts[0]
    lo = a - (a // self.chunk) * self.chunk
    return np.frombuffer(buf, np.uint8, count=length, offset=lo)

  def split(self, split: str) -> dict:
    return {k: self.index[f"{split}_{k}"] for k in ("record", "start", "length", "jitter")}


class WindowSource:
  """Random-access windows of one split: len(src), src[i] -> {'gene_id', 'sequence', 'length'}.

  src[i] is the stored (epoch-0, un-jittered) window: the fixed tiling of
  validation and test, the un-shifted tiles of train. Training reads
  `epoch_tokens(i, epoch, seed)` instead: the window shifted by its draw for
  that epoch. `indices` restricts the source (nested subsets, the
  validation sample) without copying.
  """

  def __init__(self, store: Store, split: str, indices: np.ndarray | None = None):
    self.store, self.split_name = store, split
    w = store.split(split)
    if indices is not None:
      w = {k: v[indices] for k, v in w.items()}
    self.record, self.start, self.length, self.jitter = w["record"], w["start"], w["length"], w["jitter"]

  def __len__(self) -> int:
    return int(self.start.size)

  @property
  def lengths(self) -> np.ndarray:
    """Nucleotides of every window [n] int64 (no token is read)."""
    return self.length

  def window_id(self, i: int, start: int | None = None) -> str:
    start = int(self.start[i]) if start is None else start
    return f"{self.store.record_ids[int(self.record[i])]}:{start}-{start + int(self.length[i])}"

  def __getitem__(self, i: int) -> dict:
    i = int(i)
    toks = self.store.tokens(int(self.record[i]), int(self.start[i]), int(self.length[i]))
    return {"gene_id": self.window_id(i), "sequence": tokens.token_string(toks), "length": int(self.length[i])}

  def epoch_tokens(self, i: int, epoch: int, seed: int) -> np.ndarray:
    """uint8 tokens [length] of training window i in `epoch`: shifted by its draw in [0, jitter]."""
    start = int(windows.jittered(self.start[i:i + 1], self.jitter[i:i + 1], seed, epoch, [i])[0])
    return self.store.tokens(int(self.record[i]), start, int(self.length[i]))

  def block_keys(self, block_size: int) -> list[str]:
    """The block ('record id/block number') each window starts in [n]: the unit of nested subsets."""
    ids = self.store.record_ids
    return [f"{ids[int(r)]}\0{int(s) // block_size}" for r, s in zip(self.record, self.start)]

  def subset(self, indices: np.ndarray) -> "WindowSource":
    out = WindowSource.__new__(WindowSource)
    out.store, out.split_name = self.store, self.split_name
    out.record, out.start, out.length, out.jitter = (self.record[indices], self.start[indices],
                                                     self.length[indices], self.jitter[indices])
    return out
