r"""--mode=study: train every point of a study (resuming), then tabulate, fit and plot.

  python -m dnagen_jax.main --mode=study --config=configs/studies/synthetic.py --workdir=/tmp/study
  ... --dry_run          prints one command per point (one cluster job each)
  ... --point=NAME       trains that point only (then run the study command to collect)

WORKDIR holds:
  study_spec.json   the study's name and each point's config (a workdir holds one study);
  points/<name>/    each point, an ordinary workdir (config.json, metrics, checkpoints,
                    results.json), plus study_point.json (training nucleotides, wall time)
                    and tb/ (TensorBoard events, written while it trains);
  study.csv/.json   one row per point; fits.json, study.png, study.md (report.py).
A point is done when its results.json and study_point.json exist: a finished point is
never trained again.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import shutil
import time

from dnagen_jax import config_check
from dnagen_jax.errors import UserError
from dnagen_jax.runtime import workdir_lock
from dnagen_jax.study import spec
from dnagen_jax.study import tensorboard


def point_dir(workdir: str, name: str) -> str:
  return os.path.join(workdir, "points", name)


def is_done(workdir: str, name: str) -> bool:
  """results.json and study_point.json (written last: a point stopped between them is resumed)."""
  return all(os.path.exists(os.path.join(point_dir(workdir, name), f))
             for f in ("results.json", "study_point.json"))


def _resume_view(config: dict) -> dict:
  """The RESUME_FIELDS of a config dict (what decides what a point learns)."""
  config = config_check.complete_workdir_config(config)
  view = {}
  for block, fields in config_check.RESUME_FIELDS.items():
    for field in fields:
      value = config.get(block, {}).get(field)
      view[f"{block}.{field}"] = list(value) if isinstance(value, tuple) else value
  view["train.seed"] = config.get("train", {}).get("seed")
  return view


def check_workdir(study, workdir: str, points: list) -> None:
  """Refuses (before anything is trained) a workdir holding another study or other points."""
  spec_path = os.path.join(workdir, "study_spec.json")
  if os.path.exists(spec_path):
    with open(spec_path) as f:
      old = json.load(f)
    if old.get("name") != study.name:
      raise UserError(f"{workdir} holds study {old.get('name')!r}, not {study.name!r}; "
                      "use a new --workdir")
  names = {p.name: p for p in points}
  root = os.path.join(workdir, "points")
  for name in sorted(os.listdir(root)) if os.path.isdir(root) else ():
    if name not in names:
      raise UserError(f"{workdir} holds point {name!r}, which is not a point of study "
                      f"{study.name!r} (a point of another study?); use a new --workdir")
    path = os.path.join(root, name, "config.json")
    if os.path.exists(path):
      with open(path) as f:
        old = _resume_view(json.load(f))
      new = _resume_view(json.loads(names[name].config.to_json_best_effort()))
      chosen = {"model.ngram_order"} if names[name].orders else set()  # chosen on validation
      diffs = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in new if old.get(k) != new[k] and k not in chosen]
      if diffs:
        raise UserError(f"{os.path.join(root, name)} was trained with another config "
                        f"({'; '.join(diffs[:3])}): a point of another study; use a new --workdir")


def write_spec(study, workdir: str, points: list) -> None:
  os.makedirs(workdir, exist_ok=True)
  record = {"name": study.name, "study": json.loads(study.to_json_best_effort()),
            "points": {p.name: json.loads(p.config.to_json_best_effort()) for p in points}}
  path = os.path.join(workdir, "study_spec.json")
  with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=1)
  os.replace(path + ".tmp", path)


def _train_ngram_orders(point, workdir: str) -> dict:
  """Fits each candidate order in <point>/orders/order_<n>/; the best on validation becomes the point."""
  from dnagen_jax.training import trainer  # pylint: disable=g-import-not-at-top
  best = None
  for n in point.orders:
    sub = os.path.join(workdir, "orders", f"order_{n}")
    path = os.path.join(sub, "results.json")
    if os.path.exists(path):
      with open(path) as f:
        results = json.load(f)
    else:
      config = point.config.copy_and_resolve_references()
      config.model.ngram_order = n
      results = trainer.train_and_evaluate(config, sub)
    if best is None or results["val_bits_per_nucleotide"] < best[1]:
      best = (n, results["val_bits_per_nucleotide"], sub, results)
  # The point dir becomes the chosen order's workdir (its files copied; results.json last: done).
  files = sorted(f for f in os.listdir(best[2]) if os.path.isfile(os.path.join(best[2], f))
                 and not f.startswith(workdir_lock.LOCK_NAME))  # the point holds its own lock
  for name in sorted(files, key=lambda f: f == "results.json"):
    shutil.copy2(os.path.join(best[2], name), os.path.join(workdir, name))
  return best[3]


def train_point(point, workdir: str) -> None:
  """Trains one point in its own workdir (resuming), mirroring its metrics to TensorBoard.

  The point's workdir lock (runtime/workdir_lock.py) is held throughout, so two
  tasks never train one point: the second raises `workdir_lock.Locked`.
  """
  os.makedirs(workdir, exist_ok=True)
  with workdir_lock.hold(workdir):
    if os.path.exists(os.path.join(workdir, "results.json")):  # finished while this task waited
      print(f"{os.path.basename(workdir)}: done already (results.json present)", flush=True)
      return
    _train_point(point, workdir)


def _train_point(point, workdir: str) -> None:
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  from dnagen_jax.training import trainer  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  with tensorboard.Mirror(workdir):
    if point.orders:
      results = _train_ngram_orders(point, workdir)
    else:
      results = trainer.train_and_evaluate(point.config, workdir)
  if not results:  # halted (train.halt_after_steps): not done yet
    return
  src = storage.data_source(point.config.data, "train")
  lengths = storage.example_lengths(src).tolist()  # genes or windows
  record = {"train_nucleotides": sum(lengths), "train_genes": len(lengths),
            "wall_s": time.time() - t0 + _previous_wall(workdir)}
  with open(os.path.join(workdir, "study_point.json"), "w") as f:
    json.dump(record, f, indent=1)
  tensorboard.write_results(workdir, results, record)


def _previous_wall(workdir: str) -> float:
  path = os.path.join(workdir, "study_point.json")
  if not os.path.exists(path):
    return 0.0
  with open(path) as f:
    return float(json.load(f).get("wall_s", 0.0))


def _hms(seconds: float) -> str:
  return str(datetime.timedelta(seconds=int(max(seconds, 0))))


def point_command(study_path: str, workdir: str, name: str, extra=()) -> str:
  args = ["python", "-m", "dnagen_jax.main", "--mode=study", f"--config={study_path}",
          f"--workdir={workdir}", f"--point={name}", *extra]
  return " ".join(shlex.quote(a) for a in args)


def _dry_run(study, workdir, pts, lengths, skipped, study_path, extra_args, calibrate) -> None:
  """Prints every point's command (with its size and FLOPs), the study's FLOPs and estimated time.

  Only the points' lines start with '# ' (launch/slurm/study_array.sbatch counts and parses them).
  """
  from dnagen_jax.study import calibrate as calibrate_lib  # pylint: disable=g-import-not-at-top
  cost = calibrate_lib.estimate(pts, lengths) if calibrate else {}
  for p in pts:
    state = "done" if is_done(workdir, p.name) else "to train"
    about = ""
    if p.flops_per_nt:
      about = f"; {p.params[0]:,} parameters ({p.params[1]:,} without embeddings), {p.flops_per_nt:.3g} FLOPs/nt"
      if p.name in cost:
        about += f", {cost[p.name][0]:.3g} FLOPs, about {_hms(cost[p.name][1])}"
    print(f"# {p.name} ({state}{about})\n{point_command(study_path, workdir, p.name, extra_args)}")
  for name, why in skipped:
    print(f"skipped: {name}, {why}")
  if cost:
    todo = [v for name, v in cost.items() if not is_done(workdir, name)]
    print(f"study {study.name}: {len(pts)} points, {sum(v[0] for v in cost.values()):.3g} training "
          f"FLOPs in its neural points; about {_hms(sum(v[1] for v in todo))} of training left on "
          "this machine (calibrated above; compilation, validation and N-grams not included)")


def run(study, workdir: str, point: str | None = None, dry_run: bool = False,
        study_path: str = "STUDY.py", extra_args=(), calibrate: bool = True) -> dict | None:
  """Trains the study's points that are not done, then writes and prints its tables.

  calibrate: with dry_run, time a few steps of each family's smallest and largest model.
  """
  from dnagen_jax.study import report  # pylint: disable=g-import-not-at-top
  spec.validate_study(study)
  lengths = spec.train_lengths_of(study)
  skipped = []
  pts = spec.points(study, lengths, skipped=skipped)
  check_workdir(study, workdir, pts)
  if dry_run:
    _dry_run(study, workdir, pts, lengths, skipped, study_path, extra_args, calibrate)
    return None
  if point is not None:
    chosen = [p for p in pts if p.name == point]
    if not chosen:
      raise UserError(f"--point={point}: not a point of study {study.name!r} "
                      f"(--dry_run lists them; e.g. {pts[0].name})")
    write_spec(study, workdir, pts)
    if is_done(workdir, point):
      print(f"{point}: done already (results.json present)")
    else:
      train_point(chosen[0], point_dir(workdir, point))
    return None
  write_spec(study, workdir, pts)
  todo = [p for p in pts if not is_done(workdir, p.name)]
  done = len(pts) - len(todo)
  print(f"study {study.name}: {len(pts)} points, {done} done, {len(todo)} to train", flush=True)
  for name, why in skipped:
    print(f"study {study.name}: {name} skipped, {why}", flush=True)
  t_start = time.time()
  for i, p in enumerate(todo):
    if is_done(workdir, p.name):  # finished meanwhile by a --point job beside this one
      continue
    left = ""
    if i:
      left = f", about {_hms((time.time() - t_start) / i * (len(todo) - i))} left"
    print(f"[study {done + i + 1}/{len(pts)}] {p.name}: training ({done + i} done, "
          f"{len(todo) - i} left{left})", flush=True)
    try:
      train_point(p, point_dir(workdir, p.name))
    except workdir_lock.Locked as e:  # another task trains it: go on with the others
      print(f"{p.name}: skipped, {e}", flush=True)
  missing = [p.name for p in pts if not is_done(workdir, p.name)]
  if missing:  # tables over the finished points, marked partial
    print(f"study {study.name}: {len(missing)} points not finished (e.g. {missing[0]}); "
          "run the study command again to continue", flush=True)
  finished = [p for p in pts if is_done(workdir, p.name)]
  return report.write_all(study, workdir, finished, missing) if finished else None
