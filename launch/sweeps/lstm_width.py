"""LSTM width on the synthetic genes: how close to the oracle does each width get?

  python launch/sweep.py --sweep=launch/sweeps/lstm_width.py --workdir=/tmp/dnagen/width
"""

BASE = "configs/default.py"  # every run starts from this config
SWEEP = {                     # run name -> overrides of dotted config fields
    f"lstm_h{h}": {"model.hidden_dim": h} for h in (32, 64, 128, 256)
}
