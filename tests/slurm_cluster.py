"""A private one-node SLURM cluster (munged + slurmctld + slurmd on localhost) for the tests.

Its slurm.conf, state and logs live in a temporary folder and it listens on
free ports, so it touches no system configuration; clients reach it through
$SLURM_CONF. Needs root and Debian's slurm-wlm (SLURM 22.05 was tried).
Only the cgroup-free plugins are used (proctrack/linuxproc, task/none).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

CONF = """\
ClusterName=dnagentest
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmdSpoolDir={root}/slurmd
StateSaveLocation={root}/state
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmUser=root
ReturnToService=2
KillWait=30
MaxJobCount=1000
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def why_unavailable() -> str | None:
  """None if a cluster can be started here, else the reason in a few words."""
  if os.geteuid() != 0:
    return "not root"
  missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch") if not shutil.which(b)]
  if missing:
    return f"slurm-wlm not installed (no {', '.join(missing)}; apt-get install -y slurm-wlm)"
  return None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Cluster:
  """Starts the daemons in `root`; `env` is the environment for sbatch/squeue/scontrol."""

  def __init__(self, root: str):
    self.root = root
    self.host = socket.gethostname().split(".")[0]
    for sub in ("slurmd", "state"):
      os.makedirs(os.path.join(root, sub), exist_ok=True)
    self.conf = os.path.join(root, "slurm.conf")
    with open(self.conf, "w") as f:
      f.write(CONF.format(host=self.host, ctld_port=_free_port(), d_port=_free_port(), root=root,
                          cpus=os.cpu_count() or 1))
    self.env = dict(os.environ, SLURM_CONF=self.conf)
    self._munged = None

  def start(self, timeout: float = 60) -> None:
    os.makedirs("/run/munge", exist_ok=True)  # munged fails without it
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
      self._munged = subprocess.Popen(["munged", "--force", "--foreground"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["slurmctld"], env=self.env, check=True)
    subprocess.run(["slurmd"], env=self.env, check=True)
    t0 = time.time()
    while time.time() - t0 < timeout:
      out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True,
                           text=True).stdout.strip()
      if out in ("idle", "mix", "alloc"):
        return
      time.sleep(0.5)
    raise RuntimeError(f"the SLURM node did not become idle in {timeout:.0f} s; see {self.root}/*.log")

  def stop(self) -> None:
    subprocess.run(["scontrol", "shutdown"], env=self.env, capture_output=True)
    time.sleep(1)
    for name in ("slurmd", "slurmctld"):  # our daemons, by the pids they wrote
      pid_file = os.path.join(self.root, f"{name}.pid")
      try:
        os.kill(int(open(pid_file).read().strip()), 15)
      except (OSError, ValueError):
        pass
    if self._munged is not None:
      self._munged.terminate()
      self._munged.wait(timeout=10)

  def node_idle(self) -> bool:
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True)
    return out.stdout.strip() == "idle"

  def sbatch(self, args: list[str], env: dict | None = None) -> str:
    """Submits; returns the job id."""
    env = dict(env if env is not None else os.environ, SLURM_CONF=self.conf)
    out = subprocess.run(["sbatch", "--parsable", *args], env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split(";")[0]

  def state(self, job_id: str) -> list[str]:
    """JobState of the job (one per array task); [] once SLURM has forgotten it."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], env=self.env,
                         capture_output=True, text=True).stdout
    return [w.split("=", 1)[1] for line in out.splitlines() for w in line.split()
            if w.startswith("JobState=")]

  def wait(self, job_id: str, timeout: float = 300) -> list[str]:
    """Waits until no task of the job is pending or running; returns the final states."""
    t0 = time.time()
    while time.time() - t0 < timeout:
      states = self.state(job_id)
      if states and not any(s in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED",
                                  "REQUEUE_HOLD", "SUSPENDED") for s in states):
        return states
      time.sleep(1)
    raise AssertionError(f"job {job_id} still {self.state(job_id)} after {timeout:.0f} s")
