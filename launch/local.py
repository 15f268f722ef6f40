r"""Runs one dnagen_jax command as N processes on this machine: multi-host code without a cluster.

Each process gets K simulated CPU devices (XLA's host platform device count)
and gloo CPU collectives, and the command gets --coordinator_address,
--num_processes and --process_id, so the processes form one JAX system of
N x K devices, as the hosts of a cluster job do.

  python launch/local.py --processes=2 --devices_per_process=2 -- \
    python -m dnagen_jax.main --config=configs/default.py --workdir=/tmp/dnagen/local

Process 0's output passes through; the other processes' stdout is dropped
(they print nothing of their own) and their stderr lines are prefixed
"[process i]". Ctrl-C (or SIGTERM to this launcher) sends SIGTERM to every
process, which save one agreed step and exit; a second Ctrl-C kills them.
If one process ends with an error, the others get `--grace_s` seconds to end
too (the runtime's heartbeats stop them), then are killed. The exit status is
the first non-zero status of a process, else 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_env(devices: int, base=None) -> dict:
  """The environment of one local process: K simulated CPU devices, gloo collectives."""
  env = dict(os.environ if base is None else base)
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
  env["JAX_PLATFORMS"] = "cpu"
  env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] = "gloo"
  env["PYTHONUNBUFFERED"] = "1"  # lines in order, and none lost when a process is killed
  env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
  return env


def _pump(stream, out, prefix: str) -> None:
  for line in stream:
    out.write(prefix + line)
    out.flush()


def launch(command: list[str], processes: int, devices: int, port: int | None = None,
           stdout=None, stderr=None) -> list[subprocess.Popen]:
  """Starts the N processes; returns them (process i is element i)."""
  port = port or free_port()
  stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
  procs = []
  for i in range(processes):
    argv = command + [f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={processes}",
                      f"--process_id={i}"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=process_env(devices), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    prefix = f"[process {i}] "
    threading.Thread(target=_pump, args=(proc.stdout, stdout if i == 0 else open(os.devnull, "w"),
                                         ""), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, stderr, prefix), daemon=True).start()
    print(f"[launch] process {i}: pid {proc.pid}", file=stderr, flush=True)
    procs.append(proc)
  return procs


def supervise(procs: list[subprocess.Popen], grace_s: float) -> int:
  """Waits for every process; forwards Ctrl-C/SIGTERM; bounds the wait after a failure."""
  signals = {"count": 0}

  def forward(signum, _frame):
    signals["count"] += 1
    for p in procs:
      if p.poll() is None:
        try:
          os.kill(p.pid, signal.SIGTERM if signals["count"] == 1 else signal.SIGKILL)
        except ProcessLookupError:
          pass

  previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    first_failure = None
    while any(p.poll() is None for p in procs):
      failed = [p for p in procs if p.poll() not in (None, 0)]
      if failed and first_failure is None:
        first_failure = time.time()
      if first_failure is not None and time.time() - first_failure > grace_s:
        for p in procs:
          if p.poll() is None:
            print(f"[launch] pid {p.pid} still running {grace_s:.0f} s after another process "
                  f"failed: killing it", file=sys.stderr, flush=True)
            p.kill()
      time.sleep(0.1)
  finally:
    for s, h in previous.items():
      signal.signal(s, h)
  codes = [p.wait() for p in procs]
  # A negative Popen code (killed by signal N) becomes the shell's 128 + N.
  codes = [128 - c if c < 0 else c for c in codes]
  return next((c for c in codes if c), 0)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   usage="%(prog)s [--processes N] [--devices_per_process K] -- COMMAND...")
  parser.add_argument("--processes", type=int, default=2, help="N, processes to start")
  parser.add_argument("--devices_per_process", type=int, default=2, help="K, CPU devices each")
  parser.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
  parser.add_argument("--grace_s", type=float, default=120.0,
                      help="after one process fails, kill the rest after this long")
  parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    print("error: give the command after --, e.g. -- python -m dnagen_jax.main --config=...",
          file=sys.stderr)
    return 2
  if args.processes < 1 or args.devices_per_process < 1:
    print("error: --processes and --devices_per_process must be >= 1", file=sys.stderr)
    return 2
  if command[0] == "python":
    command[0] = sys.executable  # this interpreter (its virtual environment)
  procs = launch(command, args.processes, args.devices_per_process, args.port or None)
  return supervise(procs, args.grace_s)


if __name__ == "__main__":
  sys.exit(main())
