"""Orbax checkpoints of a training run: the last N, plus the best by validation loss.

Layout in the workdir:
  checkpoints/<step>/  the most recent `keep` checkpoints (async saves)
  best/<step>/         the one with the lowest validation loss so far
Each holds `state` (model parameters and optimizer state, as a pytree) and
`meta` (JSON: step, data-iterator state, RNG seed, early-stopping counters,
nucleotides seen), so that a resumed run continues the same run.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp
from flax import nnx

from dnagen_jax.errors import UserError


class Checkpoints:
  """Two Orbax `CheckpointManager`s over one workdir (recent and best)."""

  def __init__(self, workdir: str, keep: int):
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True,
                                           create=True)
    self.recent = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")),
                                        options=options)
    # Its own barrier names: on several processes the two managers may save one step at once.
    best_options = ocp.CheckpointManagerOptions(
        max_to_keep=1, enable_async_checkpointing=True, create=True,
        multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix="best"))
    self.best = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "best")),
                                      options=best_options)

  def save(self, step: int, state, meta: dict, best: bool = False) -> None:
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    manager = self.best if best else self.recent
    if manager.latest_step() != step:
      manager.save(step, args=args)

  def latest_step(self, best: bool = False) -> int | None:
    return (self.best if best else self.recent).latest_step()

  def restore(self, abstract_state, best: bool = False) -> tuple[object, dict]:
    """Restores onto the shardings of `abstract_state` (ShapeDtypeStruct leaves)."""
    manager = self.best if best else self.recent
    step = manager.latest_step()
    try:
      restored = manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    except (ValueError, KeyError, TypeError) as e:
      raise UserError(
          f"{manager.directory}: checkpoint {step} does not fit this model "
          f"({str(e).splitlines()[0][:200]}); use a new --workdir") from None
    return restored.state, restored.meta

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
    self.recent.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.recent.close()
    self.best.close()


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
