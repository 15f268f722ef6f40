"""PyTorch twins of the neural models, for side-by-side speed comparisons.

Imported only by `dnagen_jax.bench` modules (torch is the optional `bench` extra, never
a dependency of the package). Each twin has the same sizes, the same
parameter count (up to PyTorch's second recurrent bias) and the same training
step as its JAX model:
  * LSTM / GRU: embedding (+ learned positions) -> `nn.LSTM` / `nn.GRU`
    (batch_first) -> linear head, i.e. PyTorch's own fused RNN kernels;
  * transformer: pre-LN GPT blocks with a small causal attention module,
    because the study's 3 heads of 85 dims (255 wide inside attention, d=256)
    do not fit `nn.MultiheadAttention` (which needs d = heads * head_dim).
    Attention uses `F.scaled_dot_product_attention(is_causal=True)`, the
    kernel `nn.MultiheadAttention` and `nn.TransformerEncoderLayer` call
    themselves; projections, layer norms and ReLU MLP are as in JAX.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dnagen_jax.data import tokens


def device() -> torch.device:
  """The GPU where torch sees one (cuDNN's fused RNN kernels), else the CPU."""
  return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize() -> None:
  """Waits for queued GPU work, so that wall-clock times cover it (no-op on the CPU)."""
  if torch.cuda.is_available():
    torch.cuda.synchronize()


class TorchRecurrentLM(nn.Module):
  """inputs [batch, time] int64 -> logits [batch, time, vocab]."""

  def __init__(self, cfg):
    super().__init__()
    self.embed = nn.Embedding(tokens.VOCAB_SIZE, cfg.embed_dim)
    self.pos = nn.Embedding(cfg.max_len, cfg.embed_dim) if cfg.position_embedding else None
    rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cfg.name]
    self.rnn = rnn(cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True)
    self.head = nn.Linear(cfg.hidden_dim, tokens.VOCAB_SIZE)

  def forward(self, inputs: torch.Tensor) -> torch.Tensor:
    x = self.embed(inputs)
    if self.pos is not None:
      x = x + self.pos(torch.arange(inputs.shape[1], device=inputs.device))[None]
    return self.head(self.rnn(x)[0])


class TorchCausalSelfAttention(nn.Module):
  """[batch, time, d] -> [batch, time, d] with `heads` heads of `head_dim` (any product)."""

  def __init__(self, d: int, heads: int, head_dim: int):
    super().__init__()
    self.heads, self.head_dim = heads, head_dim
    self.qkv = nn.Linear(d, 3 * heads * head_dim)
    self.out = nn.Linear(heads * head_dim, d)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    b, t, _ = x.shape
    q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)     # [b, heads, t, head_dim]
    return self.out(y.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class TorchBlock(nn.Module):
  def __init__(self, cfg, head_dim: int):
    super().__init__()
    d = cfg.embed_dim
    self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
    self.attn = TorchCausalSelfAttention(d, cfg.num_heads, head_dim)
    self.fc1, self.fc2 = nn.Linear(d, cfg.mlp_dim), nn.Linear(cfg.mlp_dim, d)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = x + self.attn(self.ln1(x))
    return x + self.fc2(F.relu(self.fc1(self.ln2(x))))


class TorchTransformerLM(nn.Module):
  """inputs [batch, time] int64 -> logits [batch, time, vocab]."""

  def __init__(self, cfg):
    super().__init__()
    head_dim = cfg.head_dim or cfg.embed_dim // cfg.num_heads
    self.embed = nn.Embedding(tokens.VOCAB_SIZE, cfg.embed_dim)
    self.pos = nn.Embedding(cfg.max_len, cfg.embed_dim)
    self.blocks = nn.ModuleList([TorchBlock(cfg, head_dim) for _ in range(cfg.num_layers)])
    self.ln_f = nn.LayerNorm(cfg.embed_dim)
    self.head = nn.Linear(cfg.embed_dim, tokens.VOCAB_SIZE)

  def forward(self, inputs: torch.Tensor) -> torch.Tensor:
    x = self.embed(inputs) + self.pos(torch.arange(inputs.shape[1], device=inputs.device))[None]
    for block in self.blocks:
      x = block(x)
    return self.head(self.ln_f(x))


def create_model(model_config, seed: int = 0) -> nn.Module:
  """The twin of `model_config`, on `device()`."""
  torch.manual_seed(seed)
  if model_config.name == "transformer":
    return TorchTransformerLM(model_config).to(device())
  return TorchRecurrentLM(model_config).to(device())


def token_log_probs(model: nn.Module, batch: dict) -> torch.Tensor:
  """ln p(target | past) [batch, time], padding 0: the JAX `runtime.steps.token_log_probs`."""
  logp = torch.log_softmax(model(batch["inputs"]).float(), dim=-1)
  return logp.gather(-1, batch["targets"][..., None])[..., 0] * batch["mask"]


class TorchTrainer:
  """The JAX train step's twin: mean NLL over real nucleotides, backward, (clip), Adam."""

  def __init__(self, config, seed: int = 0):
    self.model = create_model(config.model, seed)
    self.clip = config.train.grad_clip
    self.opt = torch.optim.Adam(self.model.parameters(), lr=config.train.learning_rate)
    # model.dtype bfloat16: PyTorch's mixed precision (autocast; float32 weights and Adam), on CUDA.
    self.bf16 = config.model.get("dtype", "float32") == "bfloat16" and device().type == "cuda"

  @staticmethod
  def to_torch(batch: dict) -> dict:
    dev = device()
    return {"inputs": torch.as_tensor(batch["inputs"]).long().to(dev),
            "targets": torch.as_tensor(batch["targets"]).long().to(dev),
            "mask": torch.as_tensor(batch["mask"]).float().to(dev)}

  def train_step(self, batch: dict) -> float:
    self.opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
      nll = -token_log_probs(self.model, batch).float().sum()
    loss = nll / batch["mask"].sum().clamp(min=1.0)
    loss.backward()
    if self.clip:
      nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
    self.opt.step()
    return loss.item()

  def score(self, batch: dict) -> torch.Tensor:
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
      return token_log_probs(self.model, batch)


def param_count(model: nn.Module) -> int:
  return sum(p.numel() for p in model.parameters())


def copy_recurrent_weights(torch_rnn: nn.Module, layers) -> None:
  """Copies JAX `RecurrentLayer`s' weights into an nn.LSTM / nn.GRU (for the tests).

  JAX keeps W [in, G*H] and one bias b (+ b_hn for GRU); PyTorch keeps
  W [G*H, in], b_ih and b_hh. GRU's b_hn is the n-part of PyTorch's b_hh.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  with torch.no_grad():
    for i, layer in enumerate(layers):
      getattr(torch_rnn, f"weight_ih_l{i}").copy_(torch.as_tensor(np.array(layer.w_ih[...]).T))
      getattr(torch_rnn, f"weight_hh_l{i}").copy_(torch.as_tensor(np.array(layer.w_hh[...]).T))
      getattr(torch_rnn, f"bias_ih_l{i}").copy_(torch.as_tensor(np.array(layer.b[...])))
      b_hh = torch.zeros_like(getattr(torch_rnn, f"bias_hh_l{i}"))
      if hasattr(layer, "b_hh"):  # model.bias_pair: PyTorch's b_hh kept apart (GRU: its r, z part)
        b_hh[:layer.b_hh.shape[0]] = torch.as_tensor(np.array(layer.b_hh[...]))
      if layer.kind == "gru":
        h = layer.hidden
        b_hh[2 * h:] = torch.as_tensor(np.array(layer.b_hn[...]))
      getattr(torch_rnn, f"bias_hh_l{i}").copy_(b_hh)

