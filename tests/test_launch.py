"""The sweep launcher's override mechanism."""

import importlib.util
import os

import pytest

from configs import default
from dnagen_jax.errors import UserError
from tests.helpers import ROOT


def _module(path):
  spec = importlib.util.spec_from_file_location("m", os.path.join(ROOT, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_overrides_and_declared_sweep():
  sweep = _module("launch/sweep.py")
  config = sweep.apply_overrides(default.get_config(), {"model.hidden_dim": 7, "train.seed": 3})
  assert config.model.hidden_dim == 7 and config.train.seed == 3
  with pytest.raises(UserError, match="model.hidden: unknown config field"):
    sweep.apply_overrides(default.get_config(), {"model.hidden": 7})
  width = _module("launch/sweeps/lstm_width.py")
  assert os.path.exists(os.path.join(ROOT, width.BASE))
  for overrides in width.SWEEP.values():
    sweep.apply_overrides(default.get_config(), overrides)
