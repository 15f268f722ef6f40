"""The pure functions that run on devices: loss, one train step, one eval step.

Both steps are pure: (graphdef, state, batch) in, new state and metrics out.
`jit_train_step` / `jit_eval_step` are the one place they are compiled, with
explicit shardings over the mesh (`mesh_utils`: batches split over 'data' and
'fsdp', parameters and optimizer state replicated or split over 'fsdp'), the
modern form of pmap data parallelism and of FSDP: XLA inserts the gradient
all-reduce (or reduce-scatter) and the parameter gathers. Training, evaluation, the
benchmark and the tests all call these two.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from dnagen_jax.data import kmers
from dnagen_jax.data import tokens
from dnagen_jax.runtime import mesh_utils


def token_log_probs(model: nnx.Module, batch: dict) -> jax.Array:
  """ln p(target_t | inputs_<=t) for every position: [batch, time] float32.

  Padding positions hold 0 (mask applied).
  """
  logits = model(batch["inputs"])                                     # [B, T, V]
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  if logp.shape[-1] != tokens.VOCAB_SIZE:  # k-mer tokens: a tail target sums the k-mers extending it
    lo, hi = (jnp.asarray(a) for a in kmers.target_ranges(kmers.kmer_of_vocab(logp.shape[-1])))
    ids = jnp.arange(logp.shape[-1])
    t = batch["targets"][..., None]
    inside = (ids >= lo[t]) & (ids < hi[t])                           # [B, T, V]
    return jax.nn.logsumexp(jnp.where(inside, logp, -jnp.inf), axis=-1) * batch["mask"]
  lp = jnp.take_along_axis(logp, batch["targets"][..., None], axis=-1)[..., 0]
  return lp * batch["mask"]


def batch_loss(model: nnx.Module, batch: dict):
  """The training loss: mean NLL (nats) over the batch's real nucleotides, a scalar.

  The sum over every real target of the global batch divided by their count
  (padding and padded rows weigh nothing), as PyTorch's
  `cross_entropy(..., ignore_index=PAD)` with its default mean. Sharded over
  devices, the sums are global: the same loss and gradients as on one device.
  Returns (loss, (summed NLL, count)).
  """
  nll = -token_log_probs(model, batch).sum()
  count = batch["mask"].sum()
  return nll / jnp.maximum(count, 1.0), (nll, count)


def train_step(graphdef, state, batch: dict):
  """One optimizer step on one global batch.

  Args:
    graphdef: static structure of (model, optimizer) from `nnx.split`.
    state: their arrays (parameters, optimizer state), replicated.
    batch: inputs/targets [B, T] int32 and mask [B, T] float32, split over 'data'.
  Returns:
    (new state, metrics): metrics hold the batch's summed NLL (nats), its
    nucleotide count and the gradient norm, as scalars.
  """
  model, optimizer = nnx.merge(graphdef, state)

  grads, (nll, count) = nnx.grad(batch_loss, has_aux=True)(model, batch)
  optimizer.update(model, grads)
  metrics = {"nll": nll, "count": count, "grad_norm": optax.tree.norm(grads)}
  return nnx.state((model, optimizer)), metrics


def eval_step(graphdef, params, batch: dict) -> jax.Array:
  """Per-nucleotide log-probabilities [B, T] of a batch under the model `params`."""
  model = nnx.merge(graphdef, params)
  return token_log_probs(model, batch)


def _traced_on(mesh, fn):
  """fn traced inside `mesh_utils.tracing_context(mesh)` (the models read its abstract mesh)."""
  def traced(*args):
    with mesh_utils.tracing_context(mesh):
      return fn(*args)
  return traced


def jit_train_step(graphdef, mesh, shardings=None):
  """train_step jitted on `mesh`: (state, batch) -> (state, metrics); the state is donated.

  shardings: the state's (`mesh_utils.state_shardings`); None = replicated.
  """
  rep, shard = mesh_utils.replicated(mesh), mesh_utils.batch_sharded(mesh)
  state = rep if shardings is None else shardings
  return jax.jit(_traced_on(mesh, lambda s, b: train_step(graphdef, s, b)), donate_argnums=0,
                 in_shardings=(state, shard), out_shardings=(state, rep))


def jit_eval_step(graphdef, mesh, shardings=None):
  """eval_step jitted on `mesh`: (params, batch) -> log-probabilities [B, T], replicated.

  shardings: the parameters' (`mesh_utils.state_shardings`); None = replicated.
  """
  rep, shard = mesh_utils.replicated(mesh), mesh_utils.batch_sharded(mesh)
  params = rep if shardings is None else shardings
  return jax.jit(_traced_on(mesh, lambda p, b: eval_step(graphdef, p, b)),
                 in_shardings=(params, shard), out_shardings=rep)


class ByShape:
  """A jitted step's executables, one per batch shape, compiled ahead of time in parallel.

  Each bucket length is one program. Compiling them one by one as batches
  arrive costs seconds per shape, serially; `precompile` lowers them in this
  thread and hands XLA's compilations to a thread pool, where they run
  concurrently (XLA releases the GIL). Calls with a shape not precompiled
  compile it then.
  """

  def __init__(self, jitted, arg, mesh, shardings=None):
    """jitted: from jit_train_step / jit_eval_step; arg: its first argument (or a like pytree);
    shardings: arg's, as given to the jit (None = replicated)."""
    self.jitted, self.mesh = jitted, mesh
    if shardings is None:
      shardings = jax.tree.map(lambda _: mesh_utils.replicated(mesh), arg)
    self._arg = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(
        x.shape, x.dtype, sharding=s, weak_type=getattr(x, "weak_type", False)), arg, shardings)
    self._compiled = {}

  def _batch_spec(self, batch_size: int, length: int) -> dict:
    shard = mesh_utils.batch_sharded(self.mesh)
    spec = lambda dtype: jax.ShapeDtypeStruct((batch_size, length), dtype, sharding=shard)
    return {"inputs": spec(jnp.int32), "targets": spec(jnp.int32), "mask": spec(jnp.float32)}

  def precompile(self, shapes, threads: int) -> None:
    """Compiles every (batch_size, length) in `shapes` not compiled yet, `threads` at a time."""
    import concurrent.futures  # pylint: disable=g-import-not-at-top
    todo = [s for s in dict.fromkeys(map(tuple, shapes)) if s not in self._compiled]
    lowered = {s: self.jitted.lower(self._arg, self._batch_spec(*s)) for s in todo}
    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
      for s, exe in zip(todo, pool.map(lambda lw: lw.compile(), lowered.values())):
        self._compiled[s] = exe

  def has(self, shape) -> bool:
    return tuple(shape) in self._compiled

  def __call__(self, arg, batch: dict):
    shape = tuple(batch["inputs"].shape)
    if shape not in self._compiled:
      self.precompile([shape], threads=1)
    return self._compiled[shape](arg, batch)


def make_optimizer(train_config, total_steps: int) -> optax.GradientTransformation:
  """Adam(W) with linear warm-up, optional cosine decay, and gradient clipping."""
  lr = train_config.learning_rate
  # warmup_steps=0: no warm-up, the first step at the full rate (as torch.optim.Adam
  # alone). A warm-up of w steps starts at rate 0: w=1 wastes the first step.
  warmup = max(0, min(train_config.warmup_steps, total_steps))
  if train_config.schedule == "cosine" and not warmup:
    schedule = optax.cosine_decay_schedule(lr, max(total_steps, 1), alpha=0.1)
  elif train_config.schedule == "cosine":
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup, max(total_steps, warmup + 1), end_value=0.1 * lr)
  elif not warmup:
    schedule = optax.constant_schedule(lr)
  else:
    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
  parts = []
  if train_config.grad_clip:
    parts.append(optax.clip_by_global_norm(train_config.grad_clip))
  parts.append(optax.adamw(schedule, weight_decay=train_config.weight_decay))
  return optax.chain(*parts)
