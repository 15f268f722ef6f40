"""The accelerator config fields: one line for each request the hardware or the library cannot meet."""

import pytest

from configs import default
from dnagen_jax import config_check
from dnagen_jax.errors import UserError


@pytest.mark.parametrize("changes,message", [
    ({"model.recurrent_impl": "fast"}, r"recurrent_impl='fast' must be one of auto, layers"),
    ({"model.recurrent_impl": "cudnn", "model.name": "gru"}, r"runs float32 LSTMs only .* not gru"),
    ({"model.recurrent_impl": "cudnn", "model.dtype": "bfloat16"}, r"not lstm in bfloat16"),
    ({"model.attention_impl": "flash"}, r"attention_impl='flash' must be one of auto, blocks"),
    ({"model.attention_impl": "cudnn"}, r"needs config.model.dtype='bfloat16'"),
    ({"train.fsdp": 0}, r"train.fsdp=0 must be a positive number of devices"),
])
def test_bad_accelerator_fields_are_one_line(changes, message):
  config = default.get_config()
  for key, value in changes.items():
    block, field = key.split(".")
    config[block][field] = value
  with pytest.raises(UserError, match=message) as e:
    config_check.validate(config)
  assert "\n" not in str(e.value)


def test_config_files_without_the_fields_still_validate():
  config = default.get_config()
  for block, field in (("model", "recurrent_impl"), ("model", "attention_impl"), ("train", "fsdp")):
    del config[block][field]
  config_check.validate(config)


def test_cudnn_lstm_asked_for_on_the_cpu_is_one_line():
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from dnagen_jax.models import recurrent  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.model.recurrent_impl = "cudnn"
  model = recurrent.RecurrentLM(config.model, rngs=nnx.Rngs(0))
  with pytest.raises(UserError, match="recurrent_impl='cudnn' needs a CUDA GPU"):
    model.path()
