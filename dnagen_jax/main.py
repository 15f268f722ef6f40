r"""dnagen_jax command line: one entry point for every mode.

  python -m dnagen_jax.main --config=configs/default.py --workdir=/tmp/run   # train (resumes)
  python -m dnagen_jax.main --mode=eval --workdir=/tmp/run --eval_file=genes.fa
  python -m dnagen_jax.main --mode=bench --config=configs/paper_lstm.py --workdir=/tmp/bench
  python -m dnagen_jax.main --mode=sweep --config=configs/ngram.py --workdir=/tmp/sweep --max_order=12
  python -m dnagen_jax.main --mode=mutate --config=configs/default.py --workdir=/tmp/muts --max_edits=5
  python -m dnagen_jax.main --mode=detect --workdir=/tmp/run --mutations=/tmp/muts/mutations_max5_seed0.csv
  python -m dnagen_jax.main --mode=report --workdirs=/tmp/a,/tmp/b --workdir=/tmp/report
  python -m dnagen_jax.main --mode=generate --workdir=/tmp/run --num_samples=100 --out=/tmp/samples.fa
  python -m dnagen_jax.main --mode=sample_report --workdir=/tmp/run --samples=/tmp/samples.fa
  python -m dnagen_jax.main --mode=study --config=configs/studies/synthetic.py --workdir=/tmp/study
  python -m dnagen_jax.main --mode=variants --workdir=/tmp/run --variants=x.vcf.gz --reference=ref.fa.gz

Any config field can be overridden: --config.model.num_layers=2.
Bad input ends in one line on stderr and exit status 2, never a traceback.
"""

import importlib.util
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Experiment directory: config, metrics, checkpoints, results.")
flags.DEFINE_enum("mode", "train", ["train", "eval", "bench", "sweep", "mutate", "detect", "report",
                                    "generate", "sample_report", "study", "variants"],
                  "What to run.")
flags.DEFINE_string("eval_file", None, "eval: CSV or FASTA file to score.")
flags.DEFINE_integer("eval_window", 0, "eval: nucleotides per window for records longer than it "
                     "(0 = the model's default: its training window or model.max_len; 2^20 for N-grams); docs/genomes.md.")
flags.DEFINE_integer("eval_stride", 0, "eval: new nucleotides scored per window; the window's first "
                     "window - stride are context only (0 = default: half the window; N-grams keep order - 1).")
flags.DEFINE_bool("eval_carry_state", False, "eval: LSTM/GRU: carry the state across windows "
                  "instead of strided windows (docs/genomes.md).")
flags.DEFINE_integer("max_order", 12, "sweep: train N-gram orders 1..max_order.")
flags.DEFINE_list("smoothings", ["mle", "laplace", "kneser_ney"], "sweep: smoothing methods.")
flags.DEFINE_integer("max_edits", 5, "mutate: MAX, mutations per pair ~ Uniform{1..MAX}.")
flags.DEFINE_integer("num_pairs", 1000, "mutate/report: pairs per set.")
flags.DEFINE_integer("seed", 0, "mutate: seed of the set; generate: seed of the samples.")
flags.DEFINE_string("split", "test", "mutate: split the genes are drawn from.")
flags.DEFINE_bool("swaps", False, "mutate: also allow adjacent swaps.")
flags.DEFINE_string("mutations", None, "detect: mutation-set CSV to score.")
flags.DEFINE_list("workdirs", [], "report: trained workdirs to tabulate; sample_report: independent models that score the samples.")
flags.DEFINE_integer("window", 20, "detect/report: W, nucleotides of context in the window rule; "
                     "variants: nucleotides per scored window (default 1024 there).")
# Multi-process runs (every mode; see runtime/distributed.py and docs/cluster.md).
flags.DEFINE_bool("distributed", False, "Start jax.distributed first (multi-host jobs); without the "
                  "flag it starts by itself inside srun/mpirun with several tasks or with "
                  "--num_processes > 1; --nodistributed never starts it.")
flags.DEFINE_string("coordinator_address", None, "distributed: HOST:PORT of process 0 "
                    "(default: from SLURM/Open MPI/TPU metadata).")
flags.DEFINE_integer("num_processes", None, "distributed: number of processes (default: from the cluster).")
flags.DEFINE_integer("process_id", None, "distributed: this process's index 0..N-1 (default: from the cluster).")
flags.DEFINE_integer("heartbeat_timeout_s", 100, "distributed: a process silent this long counts as dead "
                     "and the others stop.")
flags.DEFINE_integer("bench_steps", 10, "bench: timed steps after warm-up.")
flags.DEFINE_bool("torch", True, "bench: also time the PyTorch twin (if torch is installed).")
# generate / sample_report (dnagen_jax.generation)
flags.DEFINE_integer("num_samples", 100, "generate: samples per prompt.")
flags.DEFINE_integer("max_length", 1000, "generate: nucleotides per sample (fewer if the model stops at EOS).")
flags.DEFINE_float("temperature", 1.0, "generate: softmax temperature, > 0.")
flags.DEFINE_integer("top_k", None, "generate: sample among the k most likely outcomes (>= 1; unset = all).")
flags.DEFINE_float("top_p", 1.0, "generate: nucleus sampling, the smallest set with this mass, in (0, 1].")
flags.DEFINE_bool("greedy", False, "generate: always the most likely outcome.")
flags.DEFINE_string("prompts", None, "generate: a prefix string, or a FASTA of prefixes (one sample set each).")
flags.DEFINE_string("out", None, "generate: output FASTA; sample_report: output folder (default: beside --samples); "
                    "variants: output folder (default: WORKDIR/variants).")
flags.DEFINE_string("samples", None, "sample_report: the FASTA written by --mode=generate.")
flags.DEFINE_string("reference", "test", "sample_report: real genes to compare with: a split of the "
                    "workdir's data (train/validation/test) or a CSV/FASTA file; variants: the "
                    "reference genome FASTA (plain, gzip or bgzip; required there).")
# --mode=study (dnagen_jax/study): one point only, or print every point's command.
flags.DEFINE_string("point", None, "study: train only this point (names: --dry_run).")
flags.DEFINE_bool("dry_run", False, "study: print each point's command (one per cluster job) and stop.")
flags.DEFINE_bool("calibrate", True, "study --dry_run: time a few training steps to estimate the study's time.")
# --mode=variants (dnagen_jax/variants, docs/variants.md); also --window, --reference, --out, --workdirs.
flags.DEFINE_string("variants", None, "variants: VCF (plain/bgzip) or TSV/CSV with chrom, pos, ref, alt.")
flags.DEFINE_enum("strands", "both", ["forward", "reverse", "both"], "variants: strands scored (both = mean).")
flags.DEFINE_bool("skip_mismatches", False, "variants: skip and count variants whose REF differs from "
                  "the reference (or not A/C/G/T) instead of stopping.")
flags.DEFINE_string("label_column", None, "variants: column of damaging/benign labels (default: label, class, CLNSIG).")
flags.DEFINE_list("damaging_labels", None, "variants: label values of the damaging class (default: pathogenic, 1, ...).")
flags.DEFINE_list("benign_labels", None, "variants: label values of the benign class (default: benign, 0, ...).")
flags.DEFINE_string("score_column", None, "variants: measured score, lower = more damaging, for Spearman.")
flags.DEFINE_string("group_column", None, "variants: metrics per value of this column (default: consequence, group).")


def run(argv):
  """Dispatches --mode; imports lazily so that each mode loads only what it needs."""
  del argv
  mode, workdir, config = FLAGS.mode, FLAGS.workdir, FLAGS.config
  from dnagen_jax.runtime import distributed
  distributed.initialize(
      FLAGS.distributed if FLAGS["distributed"].present else None, FLAGS.coordinator_address,
      FLAGS.num_processes, FLAGS.process_id, heartbeat_timeout_s=FLAGS.heartbeat_timeout_s)
  if not workdir:
    raise UserError("--workdir is required")
  from dnagen_jax.runtime import compile_cache
  compile_cache.enable()
  if mode in ("train", "bench", "sweep", "mutate", "study") and config is None:
    raise UserError(f"--mode={mode} needs --config=configs/NAME.py")
  if mode == "train":
    from dnagen_jax.training import trainer
    trainer.train_and_evaluate(config, workdir)
  elif mode == "eval":
    from dnagen_jax import workdir as workdir_lib
    if not FLAGS.eval_file:
      raise UserError("--mode=eval needs --eval_file=PATH (CSV or FASTA)")
    workdir_lib.evaluate_file(workdir, FLAGS.eval_file, FLAGS.eval_window, FLAGS.eval_stride,
                              FLAGS.eval_carry_state)
  elif mode == "bench":
    from dnagen_jax.bench import step_speed
    step_speed.run(config, workdir, steps=FLAGS.bench_steps, with_torch=FLAGS.torch)
  elif mode == "sweep":
    from dnagen_jax.ngram import sweep
    sweep.run(config, workdir, max_order=FLAGS.max_order, smoothings=FLAGS.smoothings)
  elif mode == "mutate":
    from dnagen_jax.mutations import generate
    generate.run(config, workdir, max_edits=FLAGS.max_edits, num_pairs=FLAGS.num_pairs,
                 seed=FLAGS.seed, split=FLAGS.split, swaps=FLAGS.swaps)
  elif mode == "detect":
    from dnagen_jax.mutations import detect
    if not FLAGS.mutations:
      raise UserError("--mode=detect needs --mutations=PATH (mutation-set CSV)")
    detect.run(workdir, FLAGS.mutations, window=FLAGS.window)
  elif mode == "report":
    from dnagen_jax import report
    report.run(FLAGS.workdirs, workdir, window=FLAGS.window, num_pairs=FLAGS.num_pairs)
  elif mode == "generate":
    from dnagen_jax.generation import generate, sampler
    controls = sampler.Controls(FLAGS.temperature, FLAGS.top_k, FLAGS.top_p, FLAGS.greedy, FLAGS.seed)
    generate.run(workdir, FLAGS.out, FLAGS.num_samples, FLAGS.max_length, controls, FLAGS.prompts)
  elif mode == "sample_report":
    from dnagen_jax.generation import report as sample_report
    sample_report.run(workdir, FLAGS.samples, FLAGS.reference, FLAGS.out, judges=FLAGS.workdirs)
  elif mode == "study":
    from dnagen_jax.study import runner
    study_path = config_flags.get_config_filename(FLAGS["config"])
    extra = [a for a in sys.argv[1:] if a.startswith("--config.")]  # passed on to each point's command
    runner.run(config, workdir, point=FLAGS.point, dry_run=FLAGS.dry_run, study_path=study_path,
               extra_args=extra, calibrate=FLAGS.calibrate)
  elif mode == "variants":
    from dnagen_jax.variants import run as variants
    from dnagen_jax.workdir import load_scorer
    variants.run(FLAGS.workdirs or [workdir], FLAGS.variants,
                 FLAGS.reference if FLAGS["reference"].present else None,
                 FLAGS.out or os.path.join(workdir, "variants"), load_scorer,
                 window=FLAGS.window if FLAGS["window"].present else 1024, strands=FLAGS.strands,
                 skip_mismatches=FLAGS.skip_mismatches, label_column=FLAGS.label_column,
                 score_column=FLAGS.score_column, group_column=FLAGS.group_column,
                 damaging=FLAGS.damaging_labels or variants.labels_lib.DAMAGING,
                 benign=FLAGS.benign_labels or variants.labels_lib.BENIGN)


def _config_flag_error(argv: list[str], error: Exception) -> str:
  """One line for a failed flag parse: names the unknown config field if that was it."""
  config_path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if config_path and os.path.exists(config_path.split(":")[0]):
    try:
      spec = importlib.util.spec_from_file_location("user_config", config_path.split(":")[0])
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      base = module.get_config()
    except Exception as e:  # pylint: disable=broad-except
      return f"{config_path}: cannot load config ({type(e).__name__}: {e})"
    for arg in argv:
      if arg.startswith("--config.") and "=" in arg:
        path = arg[len("--config."):].split("=", 1)[0].split(".")
        node = base
        for i, key in enumerate(path):
          if not hasattr(node, "keys") or key not in node:
            parent = "config." + ".".join(path[:i]) if i else "config"
            fields = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "none"
            return (f"unknown config field config.{'.'.join(path)} "
                    f"(fields of {parent}: {fields})")
          node = node[key]
  message = str(error).strip().splitlines()
  return message[-1] if message else type(error).__name__


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing, with one-line errors instead of tracebacks."""
  config_path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if config_path and not os.path.isfile(config_path.split(":")[0]):
    print(f"error: --config={config_path}: no such config file", file=sys.stderr)
    sys.exit(2)
  try:
    return FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    print(f"error: {_config_flag_error(argv, e)}", file=sys.stderr)
    sys.exit(2)


def main(argv):
  # Orbax and TFDS log every save and read at INFO: keep the console to progress lines.
  logging.set_verbosity(logging.WARNING)
  try:
    run(argv)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except Exception as e:  # pylint: disable=broad-except
    from dnagen_jax.training.trainer import Interrupted
    if isinstance(e, Interrupted):
      print(str(e), file=sys.stderr)
      sys.exit(128 + e.signum)  # the shell's convention for "killed by this signal"
    from dnagen_jax.runtime import distributed
    message = distributed.peer_failure(e)
    if message:  # a peer died: one line, not a traceback of the failed collective
      print(f"error: {message}", file=sys.stderr, flush=True)
      os._exit(1)  # pylint: disable=protected-access  # not sys.exit: its shutdown barrier waits for the dead peer
    raise


from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top,wrong-import-position

if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
