"""Benchmarks against PyTorch: single compiled steps (`step_speed`) and the whole loop (`loop_speed`)."""
