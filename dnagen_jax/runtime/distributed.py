"""JAX's multi-controller runtime: start it, say who writes, agree on when to stop.

One code path for 1 and N processes. `initialize` starts `jax.distributed`
from explicit flags (coordinator address, process count, process id) or from
the cluster's environment through JAX's own detection (SLURM, Open MPI,
Kubernetes, Cloud TPU metadata); with one process it does nothing. Process 0
alone writes files and prints progress (`is_writer`); every process takes
part in the collectives and in Orbax's checkpoint saves.

A signal (SIGTERM from a scheduler, Ctrl-C) may reach one process only, at any
moment. `StopVote` turns each process's local flag into one decision that
every process takes at the same step: each step every process contributes its
flag to a max-reduction over all devices, dispatched without waiting, and
reads the result of two steps before, so the vote does not stall the device
and all processes see the same sequence of answers.

A process that dies without a word (kill -9, a lost node) is found by the
coordination service's heartbeats: after `heartbeat_timeout_s` the others are
ended by the runtime with an error naming the missing task, instead of
waiting in a collective forever.
"""

from __future__ import annotations

import collections
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from dnagen_jax.errors import UserError

# Environment variables that mean "this process is one task of several" for
# JAX's detection, with the variable holding the task count.
_CLUSTER_TASK_COUNTS = (
    ("SLURM", "SLURM_STEP_NUM_TASKS"),   # inside srun (not a bare sbatch/salloc shell)
    ("Open MPI", "OMPI_COMM_WORLD_SIZE"),
)


def detected_cluster(environ=None) -> str | None:
  """Name of the scheduler whose environment says there are several tasks, else None."""
  environ = os.environ if environ is None else environ
  for name, var in _CLUSTER_TASK_COUNTS:
    try:
      if int(environ.get(var, "1")) > 1:
        return name
    except ValueError:
      continue
  return None


def initialize(enabled: bool | None = None, coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None,
               heartbeat_timeout_s: int = 100, initialization_timeout_s: int = 300) -> bool:
  """Starts jax.distributed if asked or if a scheduler started several tasks; returns whether it did.

  enabled: True (--distributed: always), False (--nodistributed: never) or
  None (auto: when explicit flags name several processes or a SLURM/Open MPI
  environment has several tasks). With an explicit `num_processes`, all of
  coordinator_address and process_id must be given too; otherwise JAX reads
  the environment (on a Cloud TPU VM, its metadata).
  """
  explicit = (coordinator_address, num_processes, process_id)
  if any(v is not None for v in explicit) and not all(v is not None for v in explicit):
    raise UserError("--coordinator_address, --num_processes and --process_id go together "
                    "(give all three, or none to let JAX read the cluster's environment)")
  if num_processes is not None and not 0 <= process_id < num_processes:
    raise UserError(f"--process_id={process_id} must be in 0..{num_processes - 1} "
                    f"(--num_processes={num_processes})")
  if enabled is None:
    enabled = (num_processes or 1) > 1 or detected_cluster() is not None
  if not enabled:
    return False
  if jax.distributed.is_initialized():
    return True
  try:
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes,
        process_id=process_id, initialization_timeout=initialization_timeout_s,
        heartbeat_timeout_seconds=heartbeat_timeout_s,
        shutdown_timeout_seconds=heartbeat_timeout_s)  # the exit barrier: no longer than a heartbeat
  except (ValueError, RuntimeError) as e:
    raise UserError(f"cannot start jax.distributed ({str(e).strip().splitlines()[-1][:300]}); "
                    f"outside a SLURM/Open MPI/TPU-pod job pass --coordinator_address, "
                    f"--num_processes and --process_id") from None
  print(f"process {jax.process_index()} of {jax.process_count()}: "
        f"{jax.local_device_count()} local of {jax.device_count()} devices", file=sys.stderr,
        flush=True)
  return True


def is_writer() -> bool:
  """True on the one process that writes files and prints progress (process 0)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Every process waits here until all have arrived (no-op with one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


class StopVote:
  """A collective stop decision: `vote(flag)` each step; all processes get the same answers.

  With one process the answer is the flag itself, at once. With several,
  `vote` at step s dispatches the max of every process's flag and returns the
  result of step s - LAG, so a signal seen by any process at step s stops all
  of them after step s + LAG at the latest, at one step they agree on.
  Reading a vote LAG = 2 steps old waits only for the train step before the
  last one: the device keeps one step queued while the host makes the next
  batch, as without the vote.
  """

  LAG = 2

  def __init__(self, mesh):
    self.mesh = mesh
    self.collective = jax.process_count() > 1
    self._pending = collections.deque()
    if self.collective:
      self._sharding = NamedSharding(mesh, P("data"))
      self._local_devices = sum(d.process_index == jax.process_index()
                                for d in mesh.devices.flat)
      self._max = jax.jit(jnp.max, out_shardings=NamedSharding(mesh, P()))

  def vote(self, flag: bool) -> bool:
    """This process's flag in; the agreed decision (of LAG calls ago) out."""
    if not self.collective:
      return bool(flag)
    local = np.full((self._local_devices,), int(bool(flag)), np.int32)
    votes = jax.make_array_from_process_local_data(self._sharding, local, (self.mesh.size,))
    self._pending.append(self._max(votes))
    if len(self._pending) <= self.LAG:
      return False
    return bool(np.asarray(self._pending.popleft().addressable_data(0)))


def peer_failure(error: Exception) -> str | None:
  """One line for a collective that failed because another process died; None for other errors."""
  if jax.process_count() <= 1 or not isinstance(error, jax.errors.JaxRuntimeError):
    return None
  first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
  return (f"process {jax.process_index()} of {jax.process_count()}: a collective failed ({first}); "
          f"another process has probably died; run the same command again to resume from the "
          f"last complete checkpoint")
