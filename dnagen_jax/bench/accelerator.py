r"""One part of the GPU benchmark (`launch/gpu_bench.sh`): one family in one dtype, as JSON.

  python -m dnagen_jax.bench.accelerator --part=lstm --dtype=float32 --out=OUT_DIR
  python -m dnagen_jax.bench.accelerator --part=transformer_large --dtype=bfloat16 --out=OUT_DIR
  python -m dnagen_jax.bench.accelerator --part=gru --dry_run --out=/tmp/x   # tiny, any machine

Parts (batch x length per step; the study's sizes unless said):
  lstm               configs/paper_lstm.py, 4 x 512 LSTM, 64 x 1024 (cuDNN in float32)
  gru                the same with GRUs (the wavefront loop)
  transformer        configs/paper_transformer.py, d 256, 4 layers, 3 heads of 85 (padded to 88), 64 x 1024
  transformer_large  d 1024, 12 layers, 16 heads of 64, MLP 4096: 8 x 1024 = 8k tokens per device
Each times the project's compiled train and score steps (`step_speed`: compiled
and warmed up before timing, the median of --steps) against its PyTorch twin
on the same device (cuDNN's nn.LSTM / nn.GRU, SDPA; bfloat16 through
torch.autocast), and writes OUT_DIR/<part>_<dtype>.json: tokens/s of both,
their ratio, model FLOPs utilisation, peak device memory of both, compile
times, the library kernels the compiled step calls (`custom_calls`: cuDNN's
RNN, cuDNN's fused attention) and the paths the models chose. TF32 is set
the same way in both libraries (--tf32: float32 matrix products in TF32, the
default of both on recent NVIDIA GPUs, or strict float32 with --notf32).
One part runs in one process, so that each peak memory is its own.
--dry_run shrinks every size so that a part runs in seconds on a CPU: how
the script itself is tested.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags

PARTS = ("lstm", "gru", "transformer", "transformer_large")


def part_config(part: str, dtype: str, dry_run: bool = False):
  """The config of `part` in `dtype`, and its (batch, seq_len) per step."""
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  from configs import paper_lstm, paper_transformer  # pylint: disable=g-import-not-at-top
  if part in ("lstm", "gru"):
    config = paper_lstm.get_config()
    config.model.name = part
    shape = (64, 1024)
  elif part == "transformer":
    config = paper_transformer.get_config()
    shape = (64, 1024)
  elif part == "transformer_large":
    config = paper_transformer.get_config()
    m = config.model
    m.embed_dim, m.num_layers, m.num_heads, m.head_dim, m.mlp_dim = 1024, 12, 16, 64, 4096
    shape = (8, 1024)
  else:
    raise ValueError(f"--part={part!r} is not one of {', '.join(PARTS)}")
  config.model.dtype = dtype
  if dry_run:  # seconds on any machine
    m = config.model
    m.embed_dim, m.hidden_dim, m.num_layers, m.mlp_dim = 16, 32, 2, 32
    m.num_heads, m.head_dim = 2, 5
    shape = (8, 32)
  return config, shape


def set_tf32(enabled: bool) -> None:
  """float32 matrix products in TF32 (or not), alike in JAX and PyTorch."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_default_matmul_precision", "tensorfloat32" if enabled else "float32")
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  torch.backends.cuda.matmul.allow_tf32 = enabled
  torch.backends.cudnn.allow_tf32 = enabled


def paths(config) -> dict:
  """Which recurrent / attention path the model takes on this backend."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from dnagen_jax import models  # pylint: disable=g-import-not-at-top
  from dnagen_jax.models import transformer  # pylint: disable=g-import-not-at-top
  if config.model.name == "transformer":
    return {"attention": transformer.attention_path(config.model.get("attention_impl", "auto"))}
  model = nnx.eval_shape(lambda: models.NEURAL[config.model.name](config.model, rngs=nnx.Rngs(0)))
  return {"recurrent": model.path()}


def run(part: str, dtype: str, out_dir: str, steps: int = 10, warmup: int = 3,
        tf32: bool = True, dry_run: bool = False, with_torch: bool = True) -> dict:
  """Times one part; writes and returns its JSON."""
  import jax  # pylint: disable=g-import-not-at-top
  from dnagen_jax.bench import step_speed  # pylint: disable=g-import-not-at-top
  set_tf32(tf32)
  config, (batch, seq_len) = part_config(part, dtype, dry_run)
  batch *= 1 if dry_run else jax.device_count()  # per device, as the goals are stated
  device = jax.devices()[0]
  result = {"part": part, "dtype": dtype, "tf32": tf32, "dry_run": dry_run,
            "device": device.device_kind, "platform": device.platform, "paths": paths(config)}
  result.update(step_speed.run(config, None, steps=steps, with_torch=with_torch, batch_size=batch,
                               seq_len=seq_len, warmup=warmup, pipeline=False))
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f"{part}_{dtype}.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=2, default=str)
  print(f"wrote {path}", flush=True)
  return result


def main(argv):
  del argv
  f = flags.FLAGS
  run(f.part, f.dtype, f.out, steps=f.steps, warmup=f.warmup, tf32=f.tf32, dry_run=f.dry_run,
      with_torch=f.torch)


if __name__ == "__main__":
  flags.DEFINE_enum("part", "lstm", PARTS, "Which model.")
  flags.DEFINE_enum("dtype", "float32", ("float32", "bfloat16"), "config.model.dtype.")
  flags.DEFINE_string("out", None, "Folder for <part>_<dtype>.json.", required=True)
  flags.DEFINE_integer("steps", 10, "Timed steps (median reported).")
  flags.DEFINE_integer("warmup", 3, "Untimed steps after compilation.")
  flags.DEFINE_bool("tf32", True, "float32 products in TF32 in both libraries.")
  flags.DEFINE_bool("torch", True, "Also time the PyTorch twin.")
  flags.DEFINE_bool("dry_run", False, "Tiny sizes: seconds on any machine (tests the script).")
  app.run(main)
