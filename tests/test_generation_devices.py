"""The same seed gives the same FASTA, byte for byte, on 1 and on 8 (simulated) devices.

docs/generation.md: a sample's keys depend on (seed, prompt, sample, step) only, not on the
batch size, the number of devices or the other samples.
"""

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh

from dnagen_jax import generation
from dnagen_jax import models
from dnagen_jax.generation import fasta
from dnagen_jax.generation.sampler import Controls
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.scoring.neural import NeuralScorer
from tests.helpers import tiny_config


def _fasta(mesh, batch_size: int, name: str) -> str:
  config = tiny_config("/unused", name)
  graphdef, params = nnx.split(models.create_model(config.model, 0))
  sampler = generation.from_scorer(NeuralScorer(config, graphdef, params, mesh), batch_size=batch_size)
  records = []
  for j, prompt in enumerate(["GATTACA"]):
    samples = sampler.generate(prompt, 11, 50, Controls(seed=3, top_p=0.9), stream=j).sequences()
    records += [(f"p{j}_s{i}", prompt + s) for i, s in enumerate(samples)]
  return fasta.format_records(records)


@pytest.mark.parametrize("name", ["lstm", pytest.param("transformer", marks=pytest.mark.slow)])
def test_same_fasta_on_one_and_eight_devices(name):
  assert jax.device_count() == 8, "conftest sets 8 simulated devices"
  eight = _fasta(mesh_utils.make_mesh(), 8, name)                                   # 2 batches of 8
  one = _fasta(Mesh(np.asarray(jax.devices()[:1]), ("data",)), 3, name)             # 4 batches of 3
  assert eight == one
  body = "".join(l for l in eight.splitlines() if not l.startswith(">"))
  assert len(body) == 11 * (7 + 50) and set(body) == set("ACGT")                   # not a constant run
