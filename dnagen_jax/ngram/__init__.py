"""N-gram language models over nucleotides (numpy count tables, no Python loop over n-grams).

  codes.py        genes -> packed uint64 n-gram codes; vectorised counting
  model.py        NGramModel: MLE, Laplace, add-k, Kneser-Ney, Witten-Bell; save/load
  nltk_compat.py  the study's NLTK protocol (MLE, Laplace, Lidstone), to 1e-9 of NLTK
  scorer.py       NGramScorer (scoring.Scorer) and `load(workdir)`
  train.py        train_and_evaluate(config, workdir)
  sweep.py        orders 1..K x smoothings -> sweep.csv / .md / .json / .png
  bench.py        speed and memory against NLTK (python -m dnagen_jax.ngram.bench)
  suffix_array.py SuffixIndex: suffix array (pydivsufsort) and rank tables of training genes
  infinigram.py   InfiniGram: unbounded-order Kneser-Ney counts and smoothing; save/load
  infinigram_train.py      train_and_evaluate for model.name='infinigram'
  infinigram_bench.py      build/score speed and memory against the KN 21-gram
"""
