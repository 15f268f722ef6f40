r"""Training and scoring speed of a config, side by side with its PyTorch twin.

  python -m dnagen_jax.bench --config=configs/paper_lstm.py
  python -m dnagen_jax.bench --config=configs/paper_lstm.py --config.model.name=gru
  python -m dnagen_jax.bench --config=configs/default.py --batch_size=16 --seq_len=512
  python -m dnagen_jax.bench --config=configs/paper_transformer.py --memory_gib=16,40,80 --notorch
  python -m dnagen_jax.main --mode=bench --config=configs/paper_lstm.py --workdir=/tmp/bench
  python -m dnagen_jax.bench --loop --minutes=8 --config=configs/paper_lstm.py --workdir=/tmp/loop \
      --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv

Without --loop this times single steps on a fixed batch shape (the speed of
the compiled step alone); --loop runs `loop_speed`: the whole training loop on
real genes against a plain PyTorch loop (what users run).

What is timed, in nucleotides per second (batch x seq_len tokens per step, all real):
  * train: the project's jitted `train_step` (loss, gradients, optimizer update)
    on the same mesh and shardings as `training.trainer`, and PyTorch's twin
    (`torch_twins`): forward, backward, (clipping), Adam;
  * score: the forward pass only (`eval_step` / `torch.inference_mode`).
Each step is timed alone and JAX and PyTorch alternate step by step in one
process, so that load from other processes hits both alike; the figure is the
median of `steps` steps after warm-up, and compile time is printed separately.
Both see the same random ACGT batch (speed does not depend on the values).
Also timed: the input pipeline (`TrainBatches(...).iterator()`), which has to
outrun the model. On an accelerator the run also reports model FLOPs
utilisation and peak device memory; config.model.dtype='bfloat16' is honoured.
--memory_gib adds the longest sequence that fits in that much device memory,
with and without rematerialisation, estimated from XLA's compiled memory
analysis (nothing is run). Results go to workdir/bench.json when a workdir is given.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dnagen_jax.runtime import mesh_utils
from dnagen_jax import models
from dnagen_jax.data import tokens
from dnagen_jax.runtime import steps
from dnagen_jax.models import cpu_attention

# Peak dense matrix throughput per device (FLOP/s): (bfloat16, float32 as the
# default matmul precision runs it, i.e. TF32 on NVIDIA). Approximate, for MFU.
PEAK_FLOPS = {
    "H200": (989e12, 495e12), "H100": (989e12, 495e12), "A100": (312e12, 156e12),
    "L4": (121e12, 60e12), "A10": (125e12, 62e12), "V100": (125e12, 15.7e12),
    "TPU v4": (275e12, 275e12), "TPU v5 lite": (197e12, 197e12), "TPU v5e": (197e12, 197e12),
    "TPU v5p": (459e12, 459e12), "TPU v6": (918e12, 918e12),
}


# ---------------------------------------------------------------- pieces

def random_batch(batch_size: int, seq_len: int, seed: int = 0) -> dict:
  """A full batch of random genes: inputs/targets [batch, seq_len] int32, mask all ones."""
  rng = np.random.default_rng(seed)
  seqs = ["".join(rng.choice(list("ACGT"), seq_len)) for _ in range(batch_size)]
  targets = np.stack([tokens.encode(s) for s in seqs]).astype(np.int32)
  inputs = np.concatenate([np.full((batch_size, 1), tokens.BOS, np.int32), targets[:, :-1]], 1)
  return {"inputs": inputs, "targets": targets, "mask": np.ones_like(targets, np.float32)}


def forward_flops_per_token(model_config, seq_len: int) -> float:
  """Matrix-multiply FLOPs of one forward token (training is 3x): the MFU numerator."""
  m, v = model_config, tokens.VOCAB_SIZE
  if m.name in ("lstm", "gru"):
    g = {"lstm": 4, "gru": 3}[m.name]
    dims = [m.embed_dim] + [m.hidden_dim] * m.num_layers
    return sum(2 * (dims[i] + m.hidden_dim) * g * m.hidden_dim
               for i in range(m.num_layers)) + 2 * m.hidden_dim * v
  d, hd = m.embed_dim, m.head_dim or m.embed_dim // m.num_heads
  inner = m.num_heads * hd
  per_layer = 2 * d * 3 * inner + 2 * inner * d + 4 * d * m.mlp_dim + 4 * seq_len * inner
  return m.num_layers * per_layer + 2 * d * v


def _median_rate(times: list[float], tokens_per_step: int) -> float:
  return tokens_per_step / statistics.median(times)


def _peak_flops(dtype: str) -> float | None:
  kind = jax.devices()[0].device_kind
  for name, (bf16, f32) in PEAK_FLOPS.items():
    if name.lower() in kind.lower():
      return bf16 if dtype == "bfloat16" else f32
  return None


class JaxBench:
  """The project's jitted train and eval steps on one batch shape."""

  def __init__(self, config, batch: dict):
    self.mesh = mesh_utils.make_mesh(fsdp=config.train.get("fsdp", 1))
    model = models.create_model(config.model, config.train.seed)
    self.params = models.param_count(model)
    optimizer = nnx.Optimizer(model, steps.make_optimizer(config.train, 10**6), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    shardings = mesh_utils.state_shardings(state, self.mesh)  # replicated unless train.fsdp > 1
    self.state = jax.device_put(state, shardings)
    self.batch = mesh_utils.put_batch(batch, self.mesh)
    model_def, params = nnx.split(model)
    score_shardings = mesh_utils.state_shardings(params, self.mesh)
    # A copy: the train step donates (frees) the state's buffers.
    self.score_params = jax.device_put(jax.tree.map(jnp.copy, params), score_shardings)
    train = steps.jit_train_step(graphdef, self.mesh, shardings)
    score = steps.jit_eval_step(model_def, self.mesh, score_shardings)
    t0 = time.perf_counter()
    self.train_fn = train.lower(self.state, self.batch).compile()
    self.compile_train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    self.score_fn = score.lower(self.score_params, self.batch).compile()
    self.compile_score_s = time.perf_counter() - t0

  def train_step(self) -> float:
    t0 = time.perf_counter()
    self.state, metrics = self.train_fn(self.state, self.batch)
    jax.block_until_ready(metrics)
    return time.perf_counter() - t0

  def score_step(self) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(self.score_fn(self.score_params, self.batch))
    return time.perf_counter() - t0


class TorchBench:
  """The PyTorch twin on the same batch."""

  def __init__(self, config, batch: dict):
    from dnagen_jax.bench import torch_twins  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
    self.torch, self.torch_twins = torch, torch_twins
    self.trainer = torch_twins.TorchTrainer(config, config.train.seed)
    self.params = torch_twins.param_count(self.trainer.model)
    self.batch = self.trainer.to_torch(batch)

  def train_step(self) -> float:
    t0 = time.perf_counter()
    self.trainer.train_step(self.batch)
    return time.perf_counter() - t0

  def score_step(self) -> float:
    t0 = time.perf_counter()
    self.trainer.score(self.batch)
    self.torch_twins.synchronize()  # on a GPU the forward pass is only queued
    return time.perf_counter() - t0


def torch_available() -> bool:
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False


def pipeline_rate(config, batch_size: int, seed: int, batches: int = 30) -> dict:
  """Nucleotides/s (real ones, by mask) that `TrainBatches(...).iterator()` delivers."""
  from dnagen_jax.data import batching  # pylint: disable=g-import-not-at-top
  data = batching.TrainBatches(config.data, batch_size, seed)
  it = data.iterator()
  next(it)  # first batch pays the epoch plan and the prefetch threads' start
  nucleotides, t0 = 0, time.perf_counter()
  for _ in range(batches):
    nucleotides += int(next(it)["mask"].sum())
  seconds = time.perf_counter() - t0
  return {"batches_per_s": batches / seconds, "nucleotides_per_s": nucleotides / seconds}


# ---------------------------------------------------------------- memory estimate

def train_step_bytes(config, batch_size: int, seq_len: int, remat: bool) -> int:
  """Device bytes of one training step at [batch_size, seq_len], from XLA's memory analysis.

  Compiles (without running) the train step on abstract arrays: parameters,
  optimizer state, batch, outputs (donated state counted once) and temporaries.
  """
  cfg = config.copy_and_resolve_references()
  cfg.model.remat = remat
  # Accelerators run XLA's attention; the CPU kernel's scratch is outside XLA's memory analysis.
  cfg.model.cpu_kernel = False
  cfg.model.max_len = max(cfg.model.max_len, seq_len)  # positions must reach seq_len
  cls = models.NEURAL[cfg.model.name]
  tx = steps.make_optimizer(cfg.train, 10**6)

  def build():
    model = cls(cfg.model, rngs=nnx.Rngs(0))
    return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

  graphdef, state = nnx.split(nnx.eval_shape(build))
  state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
  batch = {"inputs": jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32),
           "targets": jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32),
           "mask": jax.ShapeDtypeStruct((batch_size, seq_len), jnp.float32)}
  one_device = mesh_utils.make_mesh(jax.devices()[:1])  # the whole batch on one device
  compiled = steps.jit_train_step(graphdef, one_device).lower(state, batch).compile()
  m = compiled.memory_analysis()
  return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
             + m.temp_size_in_bytes)


def longest_fitting(config, batch_size: int, gib: list[float], remat: bool,
                    probe=(256, 512, 1024)) -> dict:
  """Longest seq_len (multiple of 256) whose train step fits in each size of device memory.

  Bytes are fitted exactly as a + b T + c T^2 through three compiled probes
  (memory is mostly linear in T; attention score tiles add a T^2 term), solved for
  each size, and the answer is then checked by compiling at that length.
  """
  ts = np.asarray(probe, float)
  ys = np.asarray([train_step_bytes(config, batch_size, int(t), remat) for t in probe], float)
  a2, a1, a0 = np.polyfit(ts, ys, 2)
  out = {}
  for g in gib:
    budget = g * 2**30
    if abs(a2) < 1e-9 * max(abs(a1), 1):
      t = (budget - a0) / a1
    else:
      t = (-a1 + np.sqrt(max(a1 * a1 - 4 * a2 * (a0 - budget), 0.0))) / (2 * a2)
    t = int(t // 256 * 256)
    checked = train_step_bytes(config, batch_size, t, remat) if t >= 256 else None
    while checked is not None and checked > budget and t > 256:  # fit was optimistic: step down
      t -= 256
      checked = train_step_bytes(config, batch_size, t, remat)
    out[g] = {"seq_len": t, "bytes": checked}
  out["bytes_at_probes"] = dict(zip(map(int, probe), map(int, ys)))
  return out


# ---------------------------------------------------------------- the run

def _attention_form(model_config) -> str:
  """Which attention the transformer runs here (the CPU kernel falls back to XLA's when it cannot build)."""
  kernel = model_config.cpu_kernel and cpu_attention.usable(jnp.dtype(model_config.dtype))
  return "C++ CPU kernel" if kernel else "XLA"


def _time_steps(config, batch: dict, steps: int, warmup: int, with_torch: bool,
                pipeline: bool) -> dict:
  """Times train and score steps (JAX and PyTorch alternating); prints the table."""
  m, backend = config.model, jax.default_backend()
  batch_size, seq_len = batch["inputs"].shape
  tokens_per_step = batch_size * seq_len
  jb = JaxBench(config, batch)
  tb = TorchBench(config, batch) if with_torch else None
  shape = (f"{m.name} embed {m.embed_dim}, hidden {m.hidden_dim}" if m.name != "transformer" else
           f"transformer d {m.embed_dim}, {m.num_heads} heads x {m.head_dim or m.embed_dim // m.num_heads}, "
           f"mlp {m.mlp_dim}, attention: {_attention_form(m)}")
  print(f"{shape}, {m.num_layers} layer(s), {m.dtype}, remat={m.remat} | batch {batch_size} x "
        f"{seq_len} | {jax.device_count()} {backend} device(s) | JAX {jax.__version__}, "
        f"{jb.params:,} params" + (f" | torch {tb.torch.__version__}, {tb.params:,} params, "
                                   f"{tb.torch_twins.device().type}, {tb.torch.get_num_threads()} threads" if tb else ""), flush=True)
  print(f"compile: train step {jb.compile_train_s:.1f} s, score step {jb.compile_score_s:.1f} s",
        flush=True)

  times = {"jax_train": [], "jax_score": [], "torch_train": [], "torch_score": []}
  for kind in ("train", "score"):
    for i in range(warmup + steps):
      # Alternate so that load from other processes falls on both alike.
      t = getattr(jb, f"{kind}_step")()
      if i >= warmup:
        times[f"jax_{kind}"].append(t)
      if tb:
        t = getattr(tb, f"{kind}_step")()
        if i >= warmup:
          times[f"torch_{kind}"].append(t)

  result = {"jax_params": jb.params, "compile_train_s": jb.compile_train_s,
            "compile_score_s": jb.compile_score_s, "step_times_s": times,
            # Which library kernels the compiled step calls (cuDNN's RNN, fused attention...).
            "custom_calls": sorted(set(re.findall(r'custom_call_target="([^"]+)"',
                                                  jb.train_fn.as_text() or "")))}
  print(f"{'':22s}{'JAX nt/s':>12s}{'PyTorch nt/s':>14s}{'JAX/PyTorch':>13s}")
  for kind in ("train", "score"):
    jr = _median_rate(times[f"jax_{kind}"], tokens_per_step)
    result[f"jax_{kind}_nt_per_s"] = jr
    line = f"{kind + (' (forward only)' if kind == 'score' else ''):22s}{jr:12,.0f}"
    if tb:
      tr = _median_rate(times[f"torch_{kind}"], tokens_per_step)
      result[f"torch_{kind}_nt_per_s"], result[f"{kind}_ratio"] = tr, jr / tr
      line += f"{tr:14,.0f}{jr / tr:12.2f}x"
    print(line, flush=True)
  if tb:
    result.update(torch_version=tb.torch.__version__, torch_params=tb.params)
    if tb.torch.cuda.is_available():
      result["torch_peak_device_bytes"] = tb.torch.cuda.max_memory_allocated()

  flops = forward_flops_per_token(m, seq_len)
  train_flops_s = 3 * flops * result["jax_train_nt_per_s"]
  result["train_model_flops_per_s"] = train_flops_s
  if backend != "cpu":
    peak = _peak_flops(m.dtype)
    stats = jax.devices()[0].memory_stats() or {}
    result["peak_device_bytes"] = stats.get("peak_bytes_in_use")
    per_device = train_flops_s / jax.device_count()
    line = f"model FLOPs: {per_device / 1e12:.2f} TFLOP/s per device"
    if peak:
      result["mfu"] = per_device / peak
      line += f", MFU {100 * result['mfu']:.1f}% of {peak / 1e12:.0f} TFLOP/s ({m.dtype})"
    if result["peak_device_bytes"]:
      line += f" | peak device memory {result['peak_device_bytes'] / 2**30:.2f} GiB"
    print(line, flush=True)
  else:
    print(f"model FLOPs (training, matmuls): {train_flops_s / 1e9:.1f} GFLOP/s", flush=True)

  if pipeline:
    p = pipeline_rate(config, batch_size, config.train.seed)
    fastest = max(v for k, v in result.items() if k.endswith("train_nt_per_s"))
    p["times_fastest_training"] = p["nucleotides_per_s"] / fastest
    result["input_pipeline"] = p
    print(f"input pipeline ({config.data.source}, batch {batch_size}): "
          f"{p['batches_per_s']:.1f} batches/s = {p['nucleotides_per_s']:,.0f} nt/s, "
          f"{p['times_fastest_training']:.0f}x the fastest training rate above", flush=True)

  return result



def run(config, workdir: str | None, steps: int = 10, with_torch: bool = True,
        batch_size: int = 0, seq_len: int = 1024, warmup: int = 2,
        pipeline: bool = True, memory_gib: tuple = ()) -> dict:
  """Times `config`'s model (and its PyTorch twin); prints a table; returns bench.json's dict."""
  batch_size = batch_size or config.train.batch_size
  if batch_size % jax.device_count():  # the batch is split over every device
    batch_size = mesh_utils.round_to_devices(batch_size, mesh_utils.make_mesh())
    print(f"batch rounded up to {batch_size}, a multiple of the {jax.device_count()} devices")
  if config.model.name == "ngram":
    from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError("bench times the neural models; for N-grams see python -m dnagen_jax.ngram.bench")
  if config.model.name == "transformer" or config.model.position_embedding:
    if seq_len > config.model.max_len:
      config = config.copy_and_resolve_references()
      config.model.max_len = seq_len
  if with_torch and not torch_available():
    print("torch is not installed (pip install -e .[bench]): timing JAX only", flush=True)
    with_torch = False
  m = config.model
  batch = random_batch(batch_size, seq_len, config.train.seed)
  backend = jax.default_backend()
  result = {"model": m.to_dict(), "batch_size": batch_size, "seq_len": seq_len, "steps": steps,
            "backend": backend, "devices": jax.device_count(), "jax_version": jax.__version__}
  if steps:  # steps=0: only the memory estimate
    result.update(_time_steps(config, batch, steps, warmup, with_torch, pipeline))

  if memory_gib:
    result["memory"] = {}
    print(f"longest seq_len whose train step fits (batch {batch_size}; estimate from XLA's "
          f"compiled memory analysis on {backend}):", flush=True)
    for remat in (False, True):
      try:
        est = longest_fitting(config, batch_size, list(memory_gib), remat)
      except Exception as e:  # pylint: disable=broad-except
        # One setting failing to build (e.g. a model whose remat is broken) keeps the other's row.
        result["memory"][f"remat={remat}"] = {"error": f"{type(e).__name__}: {e}"}
        print(f"  remat={remat}: failed ({type(e).__name__}: {e})", flush=True)
        continue
      result["memory"][f"remat={remat}"] = {str(k): v for k, v in est.items()}
      cells = ", ".join(f"{g:g} GiB: {est[g]['seq_len']:,}" for g in memory_gib)
      print(f"  remat={remat}: {cells}", flush=True)

  if workdir:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "bench.json"), "w") as f:
      json.dump(result, f, indent=2, default=str)
  return result
