r"""Writes tests/data/torch_reference.npz: PyTorch's outputs, made once, for CI without torch.

  pip install -e ".[bench]"          # torch 2.13 CPU
  PYTHONPATH=. python tests/data/make_torch_reference.py

CI installs only the `test` extra (no torch, ~800 MB less to download), so
tests/test_torch_reference.py checks our models against what PyTorch gave
here; where torch is installed it also recomputes these arrays and checks the
file is still what PyTorch gives (docs/speed.md, "PyTorch equivalence").

The file holds, for 'lstm' and 'gru' (prefix `{kind}/`):
  w_ih_l{i} [in, G*H], b_l{i} [G*H], w_hh_l{i} [H, G*H] (and b_hn_l{i} [H], GRU):
      two stacked layers in dnagen_jax's layout (G = 4 LSTM, 3 GRU), with
      non-zero biases so every gradient path counts; PyTorch's nn.LSTM / nn.GRU
      got the same numbers through torch_twins.copy_recurrent_weights.
  x [B, T, in], dy [B, T, H]: inputs and the output cotangent.
  y [B, T, H]: nn.LSTM / nn.GRU's output; g_x [B, T, in]: d(sum y * dy)/dx;
  g_w_hh_l0 [H, G*H], g_w_ih_l0 [in, G*H]: the first layer's weight gradients,
      transposed to our layout.
and for the bench loop ('loop/'): PyTorch's validation perplexity at steps 4
and 8 of `bench --loop --epochs=1` on tests' tiny synthetic config, [2].
"""

import os
import sys
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import torch  # pylint: disable=g-import-not-at-top,wrong-import-position
from flax import nnx  # pylint: disable=g-import-not-at-top,wrong-import-position

from dnagen_jax.bench import torch_twins  # pylint: disable=g-import-not-at-top,wrong-import-position
from dnagen_jax.models import recurrent  # pylint: disable=g-import-not-at-top,wrong-import-position

PATH = os.path.join(HERE, "torch_reference.npz")
T, B, IN, H = 11, 3, 4, 5  # as tests/test_recurrent.py: small, so the file is a few kB


def recurrent_reference(kind: str) -> dict:
  """{name: array} for one kind: weights, inputs, PyTorch's outputs and gradients."""
  layers = [recurrent.RecurrentLayer(kind, IN, H, rngs=nnx.Rngs(0)),
            recurrent.RecurrentLayer(kind, H, H, rngs=nnx.Rngs(5))]
  for i, layer in enumerate(layers):  # non-zero biases: every gradient path is exercised
    layer.b[...] = jax.random.normal(jax.random.PRNGKey(1 + 10 * i), layer.b.shape) * 0.3
    if kind == "gru":
      layer.b_hn[...] = jax.random.normal(jax.random.PRNGKey(2 + 10 * i), layer.b_hn.shape) * 0.3
  rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](IN, H, 2, batch_first=True)
  torch_twins.copy_recurrent_weights(rnn, layers)
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (B, T, IN)), np.float32)
  dy = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (B, T, H)), np.float32)
  xt = torch.tensor(x, requires_grad=True)
  yt = rnn(xt)[0]
  (yt * torch.tensor(dy)).sum().backward()
  out = {"x": x, "dy": dy, "y": yt.detach().numpy(), "g_x": xt.grad.numpy(),
         "g_w_hh_l0": rnn.weight_hh_l0.grad.numpy().T, "g_w_ih_l0": rnn.weight_ih_l0.grad.numpy().T}
  for i, layer in enumerate(layers):
    out[f"w_ih_l{i}"] = np.asarray(layer.w_ih[...])
    out[f"b_l{i}"] = np.asarray(layer.b[...])
    out[f"w_hh_l{i}"] = np.asarray(layer.w_hh[...])
    if kind == "gru":
      out[f"b_hn_l{i}"] = np.asarray(layer.b_hn[...])
  return out


def loop_reference() -> dict:
  """PyTorch's validation curve of tests/test_bench.py's tiny loop benchmark."""
  from dnagen_jax.bench import loop_speed  # pylint: disable=g-import-not-at-top
  from tests.helpers import tiny_config  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    config = tiny_config(os.path.join(tmp, "tfds"))
    config.data.num_buckets = 2
    result = loop_speed.run(config, os.path.join(tmp, "loop"), epochs=1, with_torch=True)
  side = next(v for k, v in result["sides"].items() if k.startswith("PyTorch"))
  return {"steps": np.array([p["step"] for p in side["points"]]),
          "perplexity": np.array([p["perplexity"] for p in side["points"]])}


def main():
  arrays = {f"{kind}/{k}": v for kind in ("lstm", "gru") for k, v in recurrent_reference(kind).items()}
  arrays.update({f"loop/{k}": v for k, v in loop_reference().items()})
  arrays["torch_version"] = np.array(torch.__version__)
  np.savez_compressed(PATH, **arrays)
  print(f"wrote {PATH} ({os.path.getsize(PATH)} bytes, torch {torch.__version__})")


if __name__ == "__main__":
  main()
