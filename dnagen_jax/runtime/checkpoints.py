"""Orbax checkpoints of a training run: the last N, plus the best by validation loss.

Layout in the workdir:
  checkpoints/<step>/  the most recent `keep` checkpoints (async saves)
  best/<step>/         the one with the lowest validation loss so far
Each holds `state` (model parameters and optimizer state, as a pytree) and
`meta` (JSON: step, data-iterator state, RNG seed, early-stopping counters,
nucleotides seen), so that a resumed run continues the same run.

Restoring falls back: when the newest checkpoint does not restore (files
missing or cut short, unreadable metadata, a tree that does not match, a
non-finite parameter), one line on stderr names its step and the cause, it is
moved aside to `<dir>/<step>.damaged-<time>/` (never deleted; Orbax ignores the
name) and the next older one is tried. Nothing is moved unless an older one
restores: if none does, one line (UserError) lists every step's cause. A save
cut short (kill -9, a full disk) leaves only Orbax's `<step>.orbax-checkpoint-tmp-*`
folder, which Orbax never lists as a step; the training run's manager removes
such folders when it starts (`cleanup=True`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from dnagen_jax.errors import UserError
from dnagen_jax.runtime import write_errors


class Checkpoints:
  """Two Orbax `CheckpointManager`s over one workdir (recent and best)."""

  def __init__(self, workdir: str, keep: int, cleanup: bool = False):
    """cleanup: remove the folders of saves cut short (only the run that holds the workdir)."""
    # One process: old steps are removed here (`_prune`), not by Orbax: Orbax removes them even
    # after a save that failed on its background thread, which could leave no complete checkpoint.
    # Several processes: Orbax's max_to_keep, whose collective delete every process reaches in the
    # same order (a pruning of our own raced there: processes saw different finished folders).
    self.keep = {"recent": keep, "best": 1}
    self._own_pruning = jax.process_count() == 1
    self._pending = {}  # kind -> the step of the save in flight
    options = ocp.CheckpointManagerOptions(max_to_keep=None if self._own_pruning else keep,
                                           enable_async_checkpointing=True,
                                           create=True, cleanup_tmp_directories=cleanup)
    self.recent = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")),
                                        options=options)
    # Its own barrier names: on several processes the two managers may save one step at once.
    best_options = ocp.CheckpointManagerOptions(
        max_to_keep=None if self._own_pruning else 1, enable_async_checkpointing=True, create=True,
        cleanup_tmp_directories=cleanup,
        multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix="best"))
    self.best = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "best")),
                                      options=best_options)

  def save(self, step: int, state, meta: dict, best: bool = False) -> None:
    """Starts an async save; raises WriteFailed (one line) if this or an earlier save cannot write."""
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    manager = self.best if best else self.recent
    if manager.latest_step() != step:
      kind = "best" if best else "recent"
      with _writing(manager, step):
        manager.save(step, args=args)  # waits for the previous save first
      self._check_written(manager, kind)
      self._pending[kind] = step
      if self._own_pruning:
        _prune(manager, self.keep[kind], below=step)

  def latest_step(self, best: bool = False) -> int | None:
    return (self.best if best else self.recent).latest_step()

  def restore(self, abstract_state, best: bool = False) -> tuple[object, dict]:
    """Restores the newest checkpoint that restores onto the shardings of `abstract_state`.

    Damaged newer ones are reported (one line each) and moved aside; see the module doc.
    """
    manager = self.best if best else self.recent
    failed = []  # (step, cause)
    for step in sorted(manager.all_steps(), reverse=True):
      try:
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        cause = _non_finite(restored.state)
      except Exception as e:  # pylint: disable=broad-except  # TensorStore raises plain Exception
        cause = _first_line(e)
        write_errors.drop_event_loop_noise()
      if not _everywhere(cause is None):  # processes agree: one failing is a failure
        failed.append((step, cause or "it did not restore on another process"))
        continue
      if failed:
        _move_aside(manager, failed, step)
      return restored.state, restored.meta
    causes = "; ".join(f"step {s}: {c}" for s, c in failed)
    raise UserError(f"{manager.directory}: no checkpoint restores ({causes}); nothing was moved; "
                    f"move the folder aside to start again, or use a new --workdir")

  def restore_into(self, model, optimizer, sharding, best: bool = False) -> dict:
    """Restores the latest (or best) checkpoint into `model` and `optimizer`; returns its meta.

    sharding: one Sharding for every array, or a function from an nnx State to
    its shardings (`mesh_utils.state_shardings`), so that sharded parameters and
    optimizer state are read straight onto their devices.
    """
    tree = state_tree(model, optimizer)
    if callable(sharding):
      sharding = {"model": nnx.to_pure_dict(sharding(nnx.state(model))),
                  "optimizer": nnx.to_pure_dict(sharding(nnx.state(optimizer)))}
    abstract = abstract_like(tree, sharding)
    tree, meta = self.restore(abstract, best=best)
    load_state_tree(model, optimizer, tree)
    return meta

  def wait(self) -> None:
    for manager, kind in ((self.recent, "recent"), (self.best, "best")):
      with _writing(manager, None):
        manager.wait_until_finished()
      self._check_written(manager, kind)
      if self._own_pruning:
        _prune(manager, self.keep[kind])

  def _check_written(self, manager, kind: str) -> None:
    """Raises WriteFailed if the last save (finished by now) left no complete folder.

    Orbax logs a failure on its background thread and may go on; the folder says what happened.
    """
    step = self._pending.pop(kind, None)
    if step is not None and not os.path.isdir(os.path.join(str(manager.directory), str(step))):
      said = write_errors.last_dropped() or "its save failed on a background thread (see the log)"
      raise write_errors.WriteFailed(f"cannot write checkpoint {step} in {manager.directory}: "
                                     f"{said.split(' (')[0]}")

  def close(self) -> None:
    self.recent.close()
    self.best.close()


@contextlib.contextmanager
def _writing(manager, step):
  """Turns a save that fails for want of space or permission into WriteFailed."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    said = write_errors.reason(e)
    if said is None:
      raise
    said = said.split(" (")[0]  # the file inside Orbax's tmp folder says little
    what = f"checkpoint {step}" if step is not None else "a checkpoint"
    raise write_errors.WriteFailed(f"cannot write {what} in {manager.directory}: {said}") from e


def _prune(manager, keep: int, below: int | None = None) -> None:
  """Deletes all but the newest `keep` complete checkpoints older than the save in flight (`below`).

  Only saves finished before the one in flight count: every process then sees the same folders
  (Orbax's delete is a collective; the save in flight may be renamed at any moment).
  """
  complete = [s for s in write_errors.complete_steps(str(manager.directory))
              if below is None or s < below]
  listed = set(manager.all_steps())
  for step in complete[:-keep]:
    if step in listed:
      manager.delete(step)


def _first_line(error: Exception) -> str:
  """The cause of a failed restore in one short line (the innermost error: TensorStore's outer
  message is a page of JSON)."""
  while error.__cause__ is not None:
    error = error.__cause__
  line = " ".join(str(error).split()) or type(error).__name__
  line = re.split(r" \[tensorstore_spec", line)[0]  # then a page of JSON
  if len(line) > 300:
    line = line[:150] + " ... " + line[-140:]
  return f"{type(error).__name__}: {line}"


def _non_finite(tree) -> str | None:
  """'a parameter is NaN or infinite' if any floating leaf is; else None (a cheap check on device)."""
  for leaf in jax.tree.leaves(tree):
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jnp.floating):
      if not bool(jnp.isfinite(leaf.addressable_data(0)).all()):
        return "a restored array holds NaN or infinite values"
  return None


def _everywhere(ok: bool) -> bool:
  """True if `ok` holds on every process."""
  if jax.process_count() == 1:
    return ok
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.min(multihost_utils.process_allgather(np.int32(ok))))


def _move_aside(manager, failed: list, restored_step: int) -> None:
  """Renames each failed step's folder to <step>.damaged-<time> (process 0), then reloads."""
  stamp = time.strftime("%Y%m%dT%H%M%S")
  for step, cause in failed:
    path = os.path.join(str(manager.directory), str(step))
    aside = f"{path}.damaged-{stamp}"
    if jax.process_index() == 0:
      os.rename(path, aside)
      print(f"checkpoint {step} in {manager.directory} does not restore ({cause}); moved to "
            f"{aside}; using step {restored_step}", file=sys.stderr, flush=True)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices("checkpoints moved aside")
  manager.reload()


def state_tree(model, optimizer) -> dict:
  """The arrays a checkpoint holds: {'model': ..., 'optimizer': ...} as plain dicts."""
  return {"model": nnx.to_pure_dict(nnx.state(model)),
          "optimizer": nnx.to_pure_dict(nnx.state(optimizer))}


def load_state_tree(model, optimizer, tree: dict) -> None:
  """Writes a restored `state_tree` back into `model` and `optimizer`."""
  for obj, key in ((model, "model"), (optimizer, "optimizer")):
    state = nnx.state(obj)
    nnx.replace_by_pure_dict(state, tree[key])
    nnx.update(obj, state)


def abstract_like(tree, sharding):
  """ShapeDtypeStruct leaves with `sharding` (one, or a tree like `tree`): the target of a restore."""
  if isinstance(sharding, jax.sharding.Sharding):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, sharding)
