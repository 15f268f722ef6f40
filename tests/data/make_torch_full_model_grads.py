r"""Writes tests/data/torch_full_model_grads.npz: PyTorch's full-model gradients and Adam steps.

The reference that tests/test_torch_full_model.py compares the project's
training step against where torch is absent (CI); where torch is present
the test recomputes it live with `torch_reference` below.

  PYTHONPATH=$PWD python tests/data/make_torch_full_model_grads.py

For LSTM and GRU (embedding 8, 2 layers of 16, no positions): the weights
(drawn by the project's RecurrentLM, PyTorch's initialisation), one padded
batch (genes of different lengths, a padding row, 5 columns of padding past
the longest gene), and what a plain PyTorch loop computes from them:
nn.Embedding + nn.LSTM/nn.GRU + nn.Linear with those weights, the loss
`F.cross_entropy(logits, targets, ignore_index=PAD)` on the batch trimmed to
its longest gene, each parameter's gradient, and the parameters after
ADAM_STEPS steps of torch.optim.Adam(lr=LR) with clip_grad_norm_(CLIP) on
that batch. Keys: '<kind>/<what>/<param path>' (param paths as in the
project's model: embed/embedding, layers/0/w_ih, ..., head/kernel).

For the transformer (width 16, 2 blocks of 3 heads of 5, feed-forward 24,
learned positions, PyTorch's initialisation): the same, against
bench/torch_twins.TorchTransformerLM (the PyTorch loop's model: nn.Linear,
nn.LayerNorm, SDPA) holding the project's weights, its LayerNorms at Flax's
epsilon 1e-6 (PyTorch's default is 1e-5) so that the two compute one function.
"""

from __future__ import annotations

import os
import sys

import numpy as np

KINDS = ("lstm", "gru")
TRANSFORMER = "transformer"
EMBED, HIDDEN, LAYERS = 8, 16, 2  # HIDDEN a multiple of 16: the CPU kernel runs it
GENES = ("ACGTTGCAAGCTTAGGC", "GGCATTACG", "TTAGCCGATCGATCGGATCGATTGCA", "C", "ACGTNACGT")
PAD_COLUMNS = 5       # the batch is padded past its longest gene, as a bucket pads it
PAD_ROWS = 3          # and all-padding rows (8 rows: one per test device, some with no nucleotide)
LR, CLIP, ADAM_STEPS = 1e-2, 0.5, 3
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_full_model_grads.npz")


def model_config(kind: str):
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(dict(
      name=kind, embed_dim=EMBED, hidden_dim=HIDDEN, num_layers=LAYERS, position_embedding=False,
      max_len=64, remat=False, dtype="float32", init="pytorch", cpu_kernel=False))


def transformer_config():
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(dict(
      name=TRANSFORMER, embed_dim=16, num_heads=3, head_dim=5, mlp_dim=24, num_layers=LAYERS,
      position_embedding=True, max_len=64, attention_block=0, attention_impl="blocks", cpu_kernel=False,
      remat=False, dtype="float32", transformer_init="pytorch"))


def batch() -> dict:
  """The padded batch [len(GENES) + PAD_ROWS, longest + 1 + PAD_COLUMNS] (BOS + gene)."""
  from dnagen_jax.data import batching  # pylint: disable=g-import-not-at-top
  length = max(map(len, GENES)) + PAD_COLUMNS
  return batching.make_batch(list(GENES), length, len(GENES) + PAD_ROWS)


def jax_params(kind: str, seed: int = 0) -> dict:
  """{param path: array} of a fresh project model (PyTorch's initialisation)."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from dnagen_jax.models import recurrent  # pylint: disable=g-import-not-at-top
  from dnagen_jax.models import transformer  # pylint: disable=g-import-not-at-top
  if kind == TRANSFORMER:
    model = transformer.TransformerLM(transformer_config(), rngs=nnx.Rngs(seed))
  else:
    model = recurrent.RecurrentLM(model_config(kind), rngs=nnx.Rngs(seed))
  return {"/".join(map(str, path)): np.asarray(v[...])
          for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def _torch_transformer(params: dict):
  """The twin holding `params` -> (module, ours): ours(get) maps its tensors to the project's paths."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from dnagen_jax.bench import torch_twins  # pylint: disable=g-import-not-at-top
  model = torch_twins.TorchTransformerLM(transformer_config())
  names = {}  # project path -> (torch parameter, stored transposed)
  for name, module in model.named_modules():
    path = name.replace(".", "/")
    if isinstance(module, nn.Linear):
      names.update({f"{path}/kernel": (module.weight, True), f"{path}/bias": (module.bias, False)})
    elif isinstance(module, nn.LayerNorm):
      module.eps = 1e-6  # Flax's
      names.update({f"{path}/scale": (module.weight, False), f"{path}/bias": (module.bias, False)})
    elif isinstance(module, nn.Embedding):
      names[f"{path}/embedding"] = (module.weight, False)
  assert sorted(names) == sorted(params), (sorted(names), sorted(params))
  with torch.no_grad():
    for path, (p, transposed) in names.items():
      value = torch.tensor(np.asarray(params[path], np.float32))
      p.copy_(value.T if transposed else value)
  ours = lambda get: {path: (get(p).T if transposed else get(p)) for path, (p, transposed) in names.items()}
  return model, ours


def torch_reference(kind: str, params: dict, batch: dict) -> dict:
  """A plain PyTorch loop on `params` and `batch`: {'loss', 'grad/<path>', 'adam/<path>'}."""
  if kind == TRANSFORMER:
    return _torch_loop(*_torch_transformer(params), batch)
  import torch  # pylint: disable=g-import-not-at-top
  from dnagen_jax.bench import torch_twins  # pylint: disable=g-import-not-at-top
  t = lambda a: torch.tensor(np.asarray(a, np.float32))
  model = torch_twins.TorchRecurrentLM(model_config(kind))  # nn.Embedding + nn.LSTM/nn.GRU + nn.Linear
  embed, rnn, head = model.embed, model.rnn, model.head
  h = HIDDEN
  with torch.no_grad():
    embed.weight.copy_(t(params["embed/embedding"]))
    head.weight.copy_(t(params["head/kernel"]).T)
    head.bias.copy_(t(params["head/bias"]))
    for i in range(LAYERS):
      getattr(rnn, f"weight_ih_l{i}").copy_(t(params[f"layers/{i}/w_ih"]).T)
      getattr(rnn, f"weight_hh_l{i}").copy_(t(params[f"layers/{i}/w_hh"]).T)
      # The project's one bias b is PyTorch's b_ih + b_hh: all of it in b_ih here, b_hh 0
      # but for the GRU's n part (the project's b_hn).
      getattr(rnn, f"bias_ih_l{i}").copy_(t(params[f"layers/{i}/b"]))
      b_hh = torch.zeros(rnn.bias_hh_l0.shape)
      if kind == "gru":
        b_hh[2 * h:] = t(params[f"layers/{i}/b_hn"])
      getattr(rnn, f"bias_hh_l{i}").copy_(b_hh)

  def ours(get) -> dict:
    """PyTorch's parameters (or gradients) `get(p)` in the project's layout."""
    out = {"embed/embedding": get(embed.weight), "head/kernel": get(head.weight).T,
           "head/bias": get(head.bias)}
    for i in range(LAYERS):
      out[f"layers/{i}/w_ih"] = get(getattr(rnn, f"weight_ih_l{i}")).T
      out[f"layers/{i}/w_hh"] = get(getattr(rnn, f"weight_hh_l{i}")).T
      b_ih, b_hh = get(getattr(rnn, f"bias_ih_l{i}")), get(getattr(rnn, f"bias_hh_l{i}"))
      if kind == "lstm":
        out[f"layers/{i}/b"] = b_ih + b_hh
      else:
        out[f"layers/{i}/b"] = b_ih + np.concatenate([b_hh[:2 * h], 0 * b_hh[2 * h:]])
        out[f"layers/{i}/b_hn"] = b_hh[2 * h:]
    return out

  # d loss / d b: the gradient of b_ih (PyTorch's b_hh gets the same for the summed gates).
  grad_b = {f"layers/{i}/b": getattr(rnn, f"bias_ih_l{i}") for i in range(LAYERS)}
  return _torch_loop(model, ours, batch, grad_b)


def _torch_loop(model, ours, batch: dict, grad_overrides: dict | None = None) -> dict:
  """Loss and gradients of `model` (inputs [b, t] -> logits) on `batch`, then ADAM_STEPS of Adam.

  ours(get) maps the model's tensors to the project's parameter paths;
  grad_overrides {path: tensor} takes that path's gradient from another tensor.
  """
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from torch.nn import functional as F  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data import tokens  # pylint: disable=g-import-not-at-top
  real = int(np.asarray(batch["mask"]).sum(axis=1).max())  # trimmed to the longest gene
  inputs = torch.tensor(np.asarray(batch["inputs"])[:, :real], dtype=torch.long)
  targets = torch.tensor(np.asarray(batch["targets"])[:, :real], dtype=torch.long)

  def loss_fn():
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=tokens.PAD)

  loss = loss_fn()
  loss.backward()
  result = {"loss": np.float64(loss.item())}
  grads = ours(lambda p: p.grad.numpy().copy())
  grads.update({k: p.grad.numpy().copy() for k, p in (grad_overrides or {}).items()})
  result.update({f"grad/{k}": v for k, v in grads.items()})
  opt = torch.optim.Adam(model.parameters(), lr=LR)
  for _ in range(ADAM_STEPS):
    opt.zero_grad()
    loss_fn().backward()
    nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
  result.update({f"adam/{k}": v for k, v in ours(lambda p: p.detach().numpy().copy()).items()})
  return result


def main() -> None:
  out = {}
  b = batch()
  for k, v in b.items():
    out[f"batch/{k}"] = v
  for kind in KINDS + (TRANSFORMER,):
    params = jax_params(kind)
    out.update({f"{kind}/param/{k}": v for k, v in params.items()})
    out.update({f"{kind}/{k}": v for k, v in torch_reference(kind, params, b).items()})
  np.savez_compressed(PATH, **out)
  print(f"wrote {PATH}: {len(out)} arrays")


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  main()
