"""Training: the loop behind --mode=train (`trainer`) and its progress and metrics (`progress`)."""
