"""Bad input through the command line: one line on stderr, exit 2, no traceback."""

import pytest

from tests.helpers import HEADER, overrides, run_main, tiny_config


def _files_args(tfds_dir, path):
  config = tiny_config(tfds_dir)
  config.data.source = "files"
  config.data.files = path
  return overrides(config)


@pytest.mark.parametrize("setup,expected", [
    (lambda d: "/no/such/genes.csv", "/no/such/genes.csv: no such file"),
    (lambda d: (d / "a.csv").write_text("GeneID,Seq\n1,<ACGT>\n") and str(d / "a.csv"),
     "missing column NucleotideSequence; the file has columns: GeneID, Seq"),
    (lambda d: (d / "b.csv").write_text(HEADER) and str(d / "b.csv"), "no sequences found"),
    (lambda d: (d / "c.fa").write_text(">g1\nACGTAC\n>g2\nACGXT\n") and str(d / "c.fa"),
     "record g2: invalid character 'X' at position 4"),
])
def test_bad_data_files(tfds_dir, tmp_path, setup, expected):
  path = setup(tmp_path)
  proc = run_main("--config=configs/default.py", f"--workdir={tmp_path / 'w'}",
                  *_files_args(tfds_dir, path))
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr


def test_unknown_config_field(tmp_path):
  proc = run_main("--config=configs/default.py", f"--workdir={tmp_path}", "--config.model.hidden=3")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1
  assert "unknown config field config.model.hidden" in lines[0] and "hidden_dim" in lines[0]


def test_eval_needs_a_trained_workdir(tmp_path):
  genes = tmp_path / "g.fa"
  genes.write_text(">a\nACGT\n")
  proc = run_main("--mode=eval", f"--workdir={tmp_path / 'empty'}", f"--eval_file={genes}")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1 and "no trained model here" in lines[0]


def test_config_file_missing_a_field(tmp_path):
  """An older config file without a field the code reads: one line naming the field."""
  old = tmp_path / "old_config.py"
  old.write_text("from configs import default\n\n\ndef get_config():\n"
                 "  config = default.get_config()\n"
                 "  del config.model['attention_block']\n  return config\n")
  proc = run_main(f"--config={old}", f"--workdir={tmp_path / 'w'}")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr
  assert "config.model.attention_block is missing" in lines[0]
