"""Zero-shot variant effects (--mode=variants): ln p(ALT window) - ln p(REF window) under any model.

inputs.py (VCF/TSV/CSV) -> reference.py (FASTA by random access) -> windows.py
(REF/ALT windows with the same flanks) -> score.py (every family through
`scoring.Scorer`) -> labels.py, metrics.py, report.py (TSV, tables, ROC);
run.py ties them together. See docs/variants.md.
"""
