"""No collective inside the recurrent time loop: the compiled train step's HLO on 8 simulated devices.

A collective (all-reduce, all-gather, ...) inside the while loop over time
would run once per time step, 1024 per layer per step at the study's
lengths; with the batch split over devices and the weights gathered before
the loop (`models/axes.gathered`), the loop must need none.
"""

import re

import jax
import pytest
from flax import nnx

from configs import default
from dnagen_jax import models
from dnagen_jax.bench import step_speed
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.runtime import steps

COLLECTIVE = re.compile(r"\b(all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)"
                        r"(-start)?\(")


def _computations(hlo: str) -> dict[str, list[str]]:
  """{computation name: its instruction lines} of an HLO module's text."""
  comps, name = {}, None
  for line in hlo.splitlines():
    header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
    if header and not line.startswith(" "):
      name = header.group(1)
      comps[name] = []
    elif line.startswith("}"):
      name = None
    elif name:
      comps[name].append(line)
  return comps


def _inside_while_loops(hlo: str) -> tuple[int, list[str]]:
  """(number of while loops, every instruction line of their bodies and what those call)."""
  comps = _computations(hlo)
  bodies = [b for lines in comps.values() for line in lines
            for b in re.findall(r"\bwhile\(.*?body=%?([\w.\-]+)", line)]
  seen, todo = set(), list(bodies)
  while todo:
    name = todo.pop()
    if name in seen or name not in comps:
      continue
    seen.add(name)
    for line in comps[name]:
      todo.extend(n for n in re.findall(r"%([\w.\-]+)", line) if n in comps)
  return len(bodies), [line for name in seen for line in comps[name]]


def compiled_train_step(name: str, impl: str, fsdp: int) -> str:
  config = default.get_config()
  m = config.model
  m.name, m.embed_dim, m.hidden_dim, m.num_layers = name, 16, 32, 2
  m.recurrent_impl, m.cpu_kernel = impl, False  # XLA's loops (the C++ kernel has none to check)
  mesh = mesh_utils.make_mesh(fsdp=fsdp)
  model = models.create_model(m, 0)
  optimizer = nnx.Optimizer(model, steps.make_optimizer(config.train, 100), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  shardings = mesh_utils.state_shardings(state, mesh)
  state = jax.device_put(state, shardings)
  batch = mesh_utils.put_batch(step_speed.random_batch(8, 32, seed=1), mesh)
  jitted = steps.jit_train_step(graphdef, mesh, shardings)
  return jitted.lower(state, batch).compile().as_text()


@pytest.mark.parametrize("name,impl,fsdp", [
    ("lstm", "wavefront", 8), ("gru", "layers", 8),
    pytest.param("lstm", "layers", 1, marks=pytest.mark.slow),
    pytest.param("gru", "wavefront", 1, marks=pytest.mark.slow),
    pytest.param("lstm", "cudnn_reference", 8, marks=pytest.mark.slow)])
def test_no_collective_inside_the_time_loop(name, impl, fsdp):
  hlo = compiled_train_step(name, impl, fsdp)
  loops, inside = _inside_while_loops(hlo)
  assert loops >= 2  # the forward and the backward time loop
  assert COLLECTIVE.search(hlo)  # the step does have collectives (gradients, gathers): outside
  found = [line.strip()[:160] for line in inside if COLLECTIVE.search(line)]
  assert not found, found
