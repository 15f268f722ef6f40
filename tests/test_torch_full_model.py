"""The whole training step against a plain PyTorch loop: same weights, same padded batch.

Every parameter's gradient (embedding, each layer's W_ih, W_hh and biases,
the head) of `runtime.steps.batch_loss` against nn.Embedding + nn.LSTM/nn.GRU
+ nn.Linear with `F.cross_entropy(..., ignore_index=PAD)` on the batch
trimmed to its longest gene, with the CPU kernel on and off; and three steps
of `steps.jit_train_step` (Adam from `steps.make_optimizer`, clipping, the
batch split over 8 devices, some holding only padding) against
torch.optim.Adam + clip_grad_norm_. The transformer likewise, against the
PyTorch loop's twin (bench/torch_twins.TorchTransformerLM: nn.Linear,
nn.LayerNorm, SDPA) with the CPU attention kernel on and off. Where torch is installed PyTorch's side is
computed live; otherwise (CI) it is read from
tests/data/torch_full_model_grads.npz, which
`python tests/data/make_torch_full_model_grads.py` writes.
"""

import importlib.util
import os

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from dnagen_jax.models import cpu_attention
from dnagen_jax.models import cpu_recurrent
from dnagen_jax.models import recurrent
from dnagen_jax.models import transformer
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.runtime import steps

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
_spec = importlib.util.spec_from_file_location(
    "make_torch_full_model_grads", os.path.join(DATA, "make_torch_full_model_grads.py"))
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def _stored():
  with np.load(gen.PATH) as f:
    return dict(f)


STORED = _stored()
BATCH = {k: STORED[f"batch/{k}"] for k in ("inputs", "targets", "mask")}


def _reference(kind: str) -> dict:
  """PyTorch's loss, gradients and Adam steps: live where torch is installed, else stored."""
  params = {k[len(f"{kind}/param/"):]: v for k, v in STORED.items() if k.startswith(f"{kind}/param/")}
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return {k[len(kind) + 1:]: v for k, v in STORED.items()
            if k.startswith(f"{kind}/") and not k.startswith(f"{kind}/param/")}
  return gen.torch_reference(kind, params, BATCH)


def _model(kind: str, kernel: bool, bias_pair: bool = False) -> recurrent.RecurrentLM:
  """The project's model holding the stored weights (b_hh, where kept, starts at 0 as in the reference)."""
  cfg = gen.model_config(kind)
  cfg.cpu_kernel, cfg.bias_pair = kernel, bias_pair
  model = recurrent.RecurrentLM(cfg, rngs=nnx.Rngs(1))
  for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    key = f"{kind}/param/" + "/".join(map(str, path))
    var[...] = STORED[key] if key in STORED else np.zeros(var.shape, np.float32)
  return model


def _transformer(kernel: bool) -> transformer.TransformerLM:
  """The project's transformer holding the stored weights."""
  cfg = gen.transformer_config()
  cfg.cpu_kernel = kernel
  model = transformer.TransformerLM(cfg, rngs=nnx.Rngs(1))
  for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    var[...] = STORED[f"{gen.TRANSFORMER}/param/" + "/".join(map(str, path))]
  return model


def _flat(state) -> dict:
  return {"/".join(map(str, p)): np.asarray(v[...]) for p, v in nnx.to_flat_state(state)}


@pytest.mark.parametrize("kind", gen.KINDS)
def test_full_model_gradients_match_pytorch(kind):
  """Loss normalisation (mean over real nucleotides, padding rows and columns weigh 0) and backward pass."""
  ref = _reference(kind)
  batch = jax.tree.map(jax.numpy.asarray, BATCH)
  # XLA's time loops with one bias; the CPU kernel (where it builds) with the pair.
  for kernel, bias_pair in [(False, False)] + ([(True, True)] if cpu_recurrent.available() else []):
    model = _model(kind, kernel, bias_pair)
    assert cpu_recurrent.usable(np.float32, gen.HIDDEN) or not kernel
    grads, (nll, count) = nnx.jit(nnx.grad(steps.batch_loss, has_aux=True))(model, batch)
    np.testing.assert_allclose(float(nll / count), ref["loss"], rtol=1e-5)
    grads = _flat(grads)
    for name, g in grads.items():
      if name.endswith("b_hh"):  # PyTorch's b_hh gets b_ih's gradient on the gates they share
        want = ref["grad/" + name.replace("b_hh", "b")][:g.shape[0]]
      else:
        want = ref[f"grad/{name}"]
      np.testing.assert_allclose(g, want, rtol=2e-4, atol=2e-6,
                                 err_msg=f"{kind} kernel={kernel} bias_pair={bias_pair} {name}")
    assert len(grads) == sum(k.startswith("grad/") for k in ref) + bias_pair * gen.LAYERS


@pytest.mark.parametrize("kind", gen.KINDS)
def test_adam_steps_on_devices_match_pytorch(kind):
  """steps.jit_train_step on 8 devices: Adam, no warm-up, clipping, the loss over the global batch.

  With model.bias_pair (PyTorch's b_ih and b_hh as two parameters) every
  parameter follows torch.optim.Adam step for step. (With one bias the shared
  bias would move half as far per step: Adam moves each parameter by about lr.)
  """
  ref = _reference(kind)
  tc = ml_collections.ConfigDict(dict(learning_rate=gen.LR, schedule="constant", warmup_steps=0,
                                      grad_clip=gen.CLIP, weight_decay=0.0))
  mesh = mesh_utils.make_mesh()
  assert BATCH["inputs"].shape[0] % mesh.size == 0
  model = _model(kind, cpu_recurrent.available(), bias_pair=True)
  optimizer = nnx.Optimizer(model, steps.make_optimizer(tc, 100), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  state = jax.device_put(state, mesh_utils.replicated(mesh))
  step = steps.jit_train_step(graphdef, mesh)
  for i in range(gen.ADAM_STEPS):
    state, metrics = step(state, mesh_utils.put_batch(BATCH, mesh))
    if i == 0:
      np.testing.assert_allclose(float(metrics["nll"] / metrics["count"]), ref["loss"], rtol=1e-5)
  model, _ = nnx.merge(graphdef, state)
  after = _flat(nnx.state(model, nnx.Param))
  for name, got in after.items():
    if name.endswith("b_hh"):
      continue
    if name.endswith("/b"):  # the gates add b + b_hh (GRU: b_hh on r and z only)
      b_hh = after[name + "_hh"]
      got = got + np.concatenate([b_hh, np.zeros(got.shape[0] - b_hh.shape[0], np.float32)])
    moved = np.abs(ref[f"adam/{name}"] - STORED[f"{kind}/param/{name}"]).max()
    assert moved > 0.5 * gen.LR  # each parameter moved: the comparison below could fail
    np.testing.assert_allclose(got, ref[f"adam/{name}"], rtol=1e-4, atol=2e-6,
                               err_msg=f"{kind} {name}")


def test_transformer_gradients_match_pytorch():
  """Every gradient of the transformer (embeddings, LayerNorms, attention, MLP, head) against the twin's."""
  ref = _reference(gen.TRANSFORMER)
  batch = jax.tree.map(jax.numpy.asarray, BATCH)
  for kernel in (False,) + ((True,) if cpu_attention.usable(np.float32) else ()):
    grads, (nll, count) = nnx.jit(nnx.grad(steps.batch_loss, has_aux=True))(_transformer(kernel), batch)
    np.testing.assert_allclose(float(nll / count), ref["loss"], rtol=1e-5)
    grads = _flat(grads)
    assert len(grads) == sum(k.startswith("grad/") for k in ref)
    for name, g in grads.items():
      np.testing.assert_allclose(g, ref[f"grad/{name}"], rtol=2e-4, atol=2e-6, err_msg=f"kernel={kernel} {name}")


def test_transformer_adam_steps_on_devices_match_pytorch():
  """steps.jit_train_step on 8 devices moves every transformer parameter as torch.optim.Adam does."""
  ref = _reference(gen.TRANSFORMER)
  tc = ml_collections.ConfigDict(dict(learning_rate=gen.LR, schedule="constant", warmup_steps=0,
                                      grad_clip=gen.CLIP, weight_decay=0.0))
  mesh = mesh_utils.make_mesh()
  model = _transformer(cpu_attention.usable(np.float32))
  optimizer = nnx.Optimizer(model, steps.make_optimizer(tc, 100), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  step = steps.jit_train_step(graphdef, mesh)
  state = jax.device_put(state, mesh_utils.replicated(mesh))
  for _ in range(gen.ADAM_STEPS):
    state, _ = step(state, mesh_utils.put_batch(BATCH, mesh))
  model, _ = nnx.merge(graphdef, state)
  for name, got in _flat(nnx.state(model, nnx.Param)).items():
    start, want = STORED[f"{gen.TRANSFORMER}/param/{name}"], ref[f"adam/{name}"]
    if name.endswith("qkv/bias"):
      # The key bias adds q . b_k to every score of a query: softmax ignores it, so its gradient is 0
      # up to rounding, which Adam (g / sqrt(v)) turns into steps of either sign: compare q and v.
      keep = np.arange(got.size).reshape(3, -1)[[0, 2]].ravel()
      got, want, start = got[keep], want[keep], start[keep]
    if name != "pos/embedding":  # positions past the longest gene get no gradient
      assert np.abs(want - start).max() > 0.5 * gen.LR, name  # moved: the check can fail
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-6, err_msg=name)


@pytest.mark.parametrize("kind", gen.KINDS + (gen.TRANSFORMER,))
def test_stored_reference_is_what_torch_computes(kind):
  """The .npz CI reads is what PyTorch computes now from its weights and batch."""
  pytest.importorskip("torch")
  params = {k[len(f"{kind}/param/"):]: v for k, v in STORED.items() if k.startswith(f"{kind}/param/")}
  live = gen.torch_reference(kind, params, BATCH)
  for key, value in live.items():
    np.testing.assert_allclose(STORED[f"{kind}/{key}"], value, rtol=1e-5, atol=1e-7, err_msg=key)


def test_old_workdirs_keep_one_bias(tmp_path):
  """A workdir written before model.bias_pair reads as one bias (its checkpoints' layout); resuming it
  under the new default is refused in one line, with the field named."""
  import json  # pylint: disable=g-import-not-at-top
  from configs import default  # pylint: disable=g-import-not-at-top
  from dnagen_jax import config_check  # pylint: disable=g-import-not-at-top
  from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  assert config.model.bias_pair
  old = json.loads(config.to_json_best_effort())
  del old["model"]["bias_pair"]
  (tmp_path / "config.json").write_text(json.dumps(old))
  read = ml_collections.ConfigDict(config_check.read_workdir_config(str(tmp_path)))
  assert read.model.bias_pair is False
  model = nnx.eval_shape(lambda: recurrent.RecurrentLM(read.model, rngs=nnx.Rngs(0)))
  assert not hasattr(model.layers[0], "b_hh")
  with pytest.raises(UserError, match="bias_pair"):
    config_check.write_or_check_workdir_config(config, str(tmp_path))
