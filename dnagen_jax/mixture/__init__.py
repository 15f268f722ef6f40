"""Mixtures of trained models: weights fitted on validation by EM, behind the Scorer interface.

  model.py  Mixture: p(x_t) = sum_k w_{b(t), k} p_k(x_t); EM; save/load
  train.py  train_and_evaluate(config, workdir): fits the weights of config.model.mixture_workdirs
"""
