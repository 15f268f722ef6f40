"""Writes that fail for want of space or permission, said in one line.

A full disk or a read-only folder reaches the trainer in many forms: an
`OSError` from Python's own writes (metrics.jsonl, config.json, the data set's
files), or an error from TensorStore/Orbax that carries the system's message
in its text (a checkpoint's array files, written on background threads, which
Orbax also logs with their tracebacks). `describe` recognises them all,
following the chain of causes; `WriteFailed` carries a line that already
names what could not be written (checkpoints.py raises it); `quiet_orbax`
keeps Orbax's own log of such failures off the console while the one line
says it; `last_checkpoint` names the newest complete checkpoint from the
folder names (Orbax's complete ones are plain step numbers; cut-short saves
carry a tmp suffix).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys

# errno values that mean "this file cannot be written here" (not a bug).
WRITE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                errno.EROFS: "read-only filesystem", errno.EFBIG: "file too large"}
# The same, as the system's messages inside other libraries' error text.
_MESSAGES = {os.strerror(e).lower(): text for e, text in WRITE_ERRNOS.items()}
_PERMISSION = (WRITE_ERRNOS[errno.EACCES], WRITE_ERRNOS[errno.EPERM])
_PATH = re.compile(r'(?:file|writing|path)[:=]? "([^"]+)"')


class WriteFailed(Exception):
  """A write failed for want of space or permission; the message is the one line to show."""


def _chain(error: BaseException):
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


def reason(error: BaseException) -> str | None:
  """'no space left on the device' (and the file, where known) for a failed write; else None."""
  for e in _chain(error):
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
      return WRITE_ERRNOS[e.errno] + (f" ({e.filename})" if e.filename else "")
  for e in _chain(error):
    text = str(e)
    for message, said in _MESSAGES.items():
      if message in text.lower():
        path = _PATH.search(text)
        return said + (f" ({path.group(1)})" if path else "")
  return None


def describe(error: BaseException) -> str | None:
  """The one line for a failed write ('cannot write ...: no space left on the device'), or None."""
  for e in _chain(error):
    if isinstance(e, WriteFailed):
      return str(e)
  said = reason(error)
  if said is None:
    return None
  # Permission errors may come from a read too (an input file): no "write" in their line.
  return f"{'cannot write' if not said.startswith(_PERMISSION) else 'cannot open a file'}: {said}"


def is_write_failure(record: logging.LogRecord) -> bool:
  text = record.getMessage()
  if record.exc_info and record.exc_info[1] is not None:
    return reason(record.exc_info[1]) is not None
  return any(m in text.lower() for m in _MESSAGES)


_dropped: list = []  # the reasons of the failed writes that quiet_orbax kept off the console


def last_dropped() -> str | None:
  """The reason of the last failed write that Orbax logged (under quiet_orbax), if any."""
  return _dropped[-1] if _dropped else None


@contextlib.contextmanager
def quiet_orbax():
  """Keeps Orbax's logs of failed writes off the console (they reach the user as one line).

  Drops, while the block runs: Orbax's ERROR records of writes that failed for
  want of space or permission and asyncio's "exception never retrieved"
  records of the same (after a block that ends in such a failure they stay
  dropped: Orbax's threads go on logging it until the process ends); and, from
  then on, the "Event loop is closed" noise.
  """
  def keep(record):
    if record.name == "absl" and "orbax" not in record.pathname:
      return True
    if is_write_failure(record):
      exc = record.exc_info[1] if record.exc_info else None
      _dropped.append((reason(exc) if exc is not None else None) or record.getMessage()[:200])
      return False
    return True

  loggers = [logging.getLogger("absl"), logging.getLogger("asyncio")]
  for logger in loggers:
    logger.addFilter(keep)
  drop_event_loop_noise()  # it comes with a failed background write, before anything is raised
  failed = False
  try:
    yield
  except BaseException as e:
    failed = reason(e) is not None
    raise
  finally:
    if not failed:
      for logger in loggers:
        logger.removeFilter(keep)


_noise_dropped = []


def drop_event_loop_noise() -> None:
  """Keeps "RuntimeError: Event loop is closed" tracebacks off stderr for the rest of the process.

  After a failed read or write, TensorStore's callbacks into Orbax's event loops,
  closed by then, print that error many times over; it says nothing to the user.
  """
  if _noise_dropped:
    return
  _noise_dropped.append(True)

  def noise(exc) -> bool:
    return isinstance(exc, RuntimeError) and "Event loop is closed" in str(exc)

  previous_unraisable, previous_except = sys.unraisablehook, sys.excepthook
  sys.unraisablehook = lambda u: None if noise(u.exc_value) else previous_unraisable(u)
  sys.excepthook = lambda t, v, tb: None if noise(v) else previous_except(t, v, tb)


def complete_steps(directory: str) -> list[int]:
  """Steps of the complete Orbax checkpoints in `directory`, oldest first."""
  try:
    names = os.listdir(directory)
  except OSError:
    return []
  return sorted(int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(directory, n)))


def last_checkpoint(workdir: str) -> str:
  """'the last complete checkpoint is step N in WORKDIR/checkpoints; ...': what a user needs next."""
  directory = os.path.join(workdir, "checkpoints")
  steps = complete_steps(directory)
  if not steps:
    return f"no complete checkpoint in {directory} yet; free space (or fix permissions) and run again"
  return (f"the last complete checkpoint is step {steps[-1]} in {directory}; free space (or fix "
          f"permissions) and run the same command to resume")
