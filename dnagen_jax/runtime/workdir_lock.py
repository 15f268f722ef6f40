"""One run per workdir: a lock file that names its holder and beats while it runs.

`hold(workdir)` wraps a whole training run. It writes WORKDIR/run.lock (JSON:
host, pid, the process's start time, the run's start time, a heartbeat time and
a random token), refreshes the heartbeat every HEARTBEAT_S seconds from a
daemon thread, and removes the file on every exit path (return, exception,
Ctrl-C, SIGTERM). A second run on a locked workdir stops with one line
(`UserError`, exit 2) naming the holder.

A lock left behind by a run that cannot remove it (kill -9, a lost node) is
stale, and the next run takes it over with one line on stderr, when
  - its host is this host and its pid is gone, or now belongs to a process
    that started later (a reused pid), or
  - its heartbeat is older than STALE_S: the sign that works across hosts
    sharing a filesystem (the holder's clock wrote it; cluster clocks agree to
    well under a second, STALE_S is minutes).
The file is created with link(2) from a complete temporary file, so a reader
never sees it half-written, and taken over by renaming the stale file aside
and checking that the renamed file is the one judged stale (two runs that
both find a stale lock: one wins, the other then finds a live lock).

On several processes (runtime/distributed.py) process 0 alone holds the lock
and tells the others whether it got it, so either all run or all stop.
Holding is re-entrant within a process: a study point's N-gram orders train in
sub-workdirs while the point holds its own lock.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid

from dnagen_jax.errors import UserError

LOCK_NAME = "run.lock"
HEARTBEAT_S = 30.0   # how often a live run refreshes its heartbeat
STALE_S = 300.0      # a heartbeat older than this: the holder is dead (10 missed beats)

class Locked(UserError):
  """The workdir is held by another live run."""


_held: dict = {}     # realpath(workdir) -> [_Lock or None, depth]: this process's locks


def _process_start(pid: int) -> str | None:
  """The start time of `pid` in clock ticks since boot (Linux /proc), or None."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _when(t: float) -> str:
  return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def describe(info: dict, now: float | None = None) -> str:
  """'host H pid P (started ..., heartbeat N s ago)': who holds a lock."""
  now = time.time() if now is None else now
  if "heartbeat" not in info:
    return "an unreadable lock file"
  return (f"host {info.get('host')} pid {info.get('pid')} (started {_when(info.get('started', 0))}, "
          f"heartbeat {now - info.get('heartbeat', 0):.0f} s ago)")


def stale_reason(info: dict, now: float | None = None) -> str | None:
  """Why the lock described by `info` is stale, or None if its holder may be alive."""
  now = time.time() if now is None else now
  if "heartbeat" not in info:
    return "the lock file is unreadable"
  if now - float(info["heartbeat"]) > STALE_S:
    return f"no heartbeat for {now - float(info['heartbeat']):.0f} s"
  if info.get("host") == socket.gethostname():
    pid = int(info.get("pid", -1))
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return f"process {pid} is gone"
    except PermissionError:
      pass  # alive, another user's
    start = _process_start(pid)
    if info.get("pid_start") and start and start != info["pid_start"]:
      return f"process {pid} is gone (its pid now belongs to another process)"
  return None


def _read(path: str) -> dict | None:
  try:
    with open(path) as f:
      info = json.load(f)
    return info if isinstance(info, dict) else {}
  except FileNotFoundError:
    return None
  except (OSError, ValueError):
    return {}  # unreadable: no heartbeat, so stale


class _Lock:
  """The lock file of one workdir, held by this process."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_NAME)
    now = time.time()
    self.info = {"host": socket.gethostname(), "pid": os.getpid(),
                 "pid_start": _process_start(os.getpid()), "started": now, "heartbeat": now,
                 "token": uuid.uuid4().hex, "command": " ".join(sys.argv)[:500]}
    self.lost = None  # set by the heartbeat when another run took the lock over
    self._waited = False
    self._stop = threading.Event()
    self._thread = None

  def _write_tmp(self) -> str:
    tmp = f"{self.path}.{self.info['token']}.tmp"
    with open(tmp, "w") as f:
      json.dump(self.info, f)
    return tmp

  def _create(self) -> bool:
    """Creates the lock file with our record, atomically; False if one exists."""
    tmp = self._write_tmp()
    try:
      os.link(tmp, self.path)
      return True
    except FileExistsError:
      return False
    except OSError:  # a filesystem without hard links: exclusive create, then write
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        return False
      with os.fdopen(fd, "w") as f:
        json.dump(self.info, f)
      return True
    finally:
      with contextlib.suppress(OSError):
        os.unlink(tmp)

  def acquire(self) -> "_Lock":
    try:
      for _ in range(5):
        if self._create():
          break
        info = _read(self.path)
        if info is None:  # released in between
          continue
        reason = stale_reason(info)
        if reason is None and self._wait_for_silent_holder(info):
          continue
        if reason is None:
          raise Locked(
              f"{self.workdir} is in use by another run: {describe(info)}, lock file {self.path}; "
              f"wait for it to end or stop it (a lock whose process is gone is taken over by itself), "
              f"or use another --workdir")
        aside = f"{self.path}.stale-{self.info['token']}"
        try:
          os.rename(self.path, aside)
        except FileNotFoundError:
          continue
        moved = _read(aside) or {}
        if moved.get("token") != info.get("token"):  # another run took it over first: give it back
          with contextlib.suppress(OSError):
            os.link(aside, self.path)
          os.unlink(aside)
          continue
        os.unlink(aside)
        print(f"{self.workdir}: taking over the lock of {describe(info)}: {reason}",
              file=sys.stderr, flush=True)
      else:
        raise UserError(f"{self.path}: could not take the lock (other runs keep changing it)")
    except OSError as e:
      raise UserError(f"cannot write the lock file {self.path}: {e.strerror or e}") from None
    self._thread = threading.Thread(target=self._beat, name="workdir-lock-heartbeat", daemon=True)
    self._thread.start()
    return self

  def _wait_for_silent_holder(self, info: dict) -> bool:
    """A holder on another host that missed two heartbeats has probably died (a lost node, then
    a requeue): wait until its lock is stale or beats again; True if we waited (look again)."""
    age = time.time() - float(info["heartbeat"])
    if info.get("host") == socket.gethostname() or age <= 2 * HEARTBEAT_S or self._waited:
      return False
    self._waited = True
    print(f"{self.workdir}: the lock of {describe(info)} has missed its heartbeats; waiting up to "
          f"{STALE_S - age:.0f} s for it to beat again or go stale", file=sys.stderr, flush=True)
    while True:
      time.sleep(max(0.0, min(HEARTBEAT_S, STALE_S - (time.time() - float(info["heartbeat"])) + 0.01)))
      now = _read(self.path)
      if (now is None or now.get("token") != info.get("token")
          or now.get("heartbeat") != info["heartbeat"] or stale_reason(now) is not None):
        return True

  def _beat(self) -> None:
    while not self._stop.wait(HEARTBEAT_S):
      info = _read(self.path)
      if info is not None and info.get("token") != self.info["token"]:
        self.lost = describe(info) if info else "an unreadable lock file"
        print(f"{self.workdir}: another run took over this run's lock ({self.lost})",
              file=sys.stderr, flush=True)
        return
      self.info["heartbeat"] = time.time()
      try:
        os.replace(self._write_tmp(), self.path)
      except OSError:
        pass  # a full disk: the next beat tries again; the run itself reports the disk

  def release(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    info = _read(self.path)
    if info and info.get("token") == self.info["token"]:
      with contextlib.suppress(OSError):
        os.unlink(self.path)
    with contextlib.suppress(OSError):  # a heartbeat's temporary file that a full disk cut short
      os.unlink(f"{self.path}.{self.info['token']}.tmp")


def check(workdir: str) -> None:
  """Raises UserError if another run took over this process's lock on `workdir`."""
  entry = _held.get(os.path.realpath(workdir))
  if entry and entry[0] is not None and entry[0].lost:
    raise UserError(f"{workdir}: another run took over this run's lock ({entry[0].lost}); "
                    f"stopped without saving")


def _process() -> tuple[int, int]:
  """(this process's index, the process count); JAX not imported means one process."""
  jax = sys.modules.get("jax")
  return (jax.process_index(), jax.process_count()) if jax is not None else (0, 1)


def _agree(ok: bool) -> bool:
  """Process 0's `ok`, on every process."""
  if _process()[1] == 1:
    return ok
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))


def _term_to_exit(signum, _frame):
  raise SystemExit(128 + signum)  # unwinds through `hold`, which removes the lock


@contextlib.contextmanager
def hold(workdir: str):
  """Holds the lock of `workdir` for the `with` block (process 0 of several); see the module doc."""
  key = os.path.realpath(workdir)
  if key in _held:  # this process holds it already
    _held[key][1] += 1
    try:
      yield
    finally:
      _held[key][1] -= 1
    return
  lock, error = None, None
  created = not os.path.exists(workdir)
  if _process()[0] == 0:
    os.makedirs(workdir, exist_ok=True)
    try:
      lock = _Lock(workdir).acquire()
    except UserError as e:
      error = e
  if not _agree(error is None):
    if error is None:
      info = _read(os.path.join(workdir, LOCK_NAME))
      error = Locked(f"{workdir} is in use by another run"
                        f"{': ' + describe(info) if info else ''} (process 0 could not lock it)")
    raise error
  # SIGTERM outside the training loop (which catches it itself) still removes the lock.
  main = threading.current_thread() is threading.main_thread()
  previous = signal.getsignal(signal.SIGTERM) if main else None
  if main and previous == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _term_to_exit)
  _held[key] = [lock, 1]
  try:
    yield
  finally:
    del _held[key]
    if main and previous == signal.SIG_DFL:
      signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if lock is not None:
      lock.release()
      if created:  # a run refused before writing anything leaves no empty workdir behind
        with contextlib.suppress(OSError):
          os.rmdir(workdir)
