"""Two local processes (jax.distributed on 127.0.0.1) train like one process.

Each process has 2 CPU devices and feeds only its own rows of the global batch
(`mesh_utils.put_batch`); the jitted train step then averages gradients over
all 4 devices across the two processes. The losses and updated parameters
must equal a single process with 4 devices on the same batch.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from tests.helpers import ROOT

WORKER = r"""
import json, sys
import jax
import numpy as np
jax.config.update("jax_cpu_collectives_implementation", "gloo")
process_id, processes, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if processes > 1:
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=processes, process_id=process_id)
from configs import default
from dnagen_jax.bench import step_speed
config = default.get_config()
config.model.embed_dim, config.model.hidden_dim = 8, 16
bench_state = step_speed.JaxBench(config, step_speed.random_batch(8, 32, seed=3))
state, losses = bench_state.state, []
for _ in range(3):
  state, metrics = bench_state.train_fn(state, bench_state.batch)
  # Replicated results: every process holds a full copy on its own devices.
  nll, count = (float(np.asarray(metrics[k].addressable_data(0))) for k in ("nll", "count"))
  losses.append(nll / count)
checksum = float(sum(np.abs(np.asarray(x.addressable_data(0))).sum()
                     for x in jax.tree.leaves(state)))
print(json.dumps({"devices": jax.device_count(), "losses": losses, "checksum": checksum}))
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(process_id: int, processes: int, port: int, local_devices: int) -> subprocess.Popen:
  env = dict(os.environ, PYTHONPATH=ROOT,
             XLA_FLAGS=f"--xla_force_host_platform_device_count={local_devices}")
  return subprocess.Popen([sys.executable, "-c", WORKER, str(process_id), str(processes), str(port)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def _result(proc: subprocess.Popen) -> dict:
  out, err = proc.communicate(timeout=240)
  assert proc.returncode == 0, err[-2000:]
  return json.loads(out.strip().splitlines()[-1])


def test_two_processes_match_one_process():
  port = _free_port()
  workers = [_launch(i, 2, port, local_devices=2) for i in range(2)]
  two = [_result(w) for w in workers]
  one = _result(_launch(0, 1, port, local_devices=4))
  assert two[0]["devices"] == two[1]["devices"] == one["devices"] == 4
  for r in two:
    np.testing.assert_allclose(r["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(r["checksum"], one["checksum"], rtol=1e-5)
  assert one["losses"][-1] < one["losses"][0]  # the steps really trained
