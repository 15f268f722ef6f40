"""A mixture of trained models, weights fitted on the validation split by EM.

Give the component workdirs (trained on the same data set as this config's
data flags) and the data flags they were trained with:

  python -m dnagen_jax.main --config=configs/mixture.py --workdir=/tmp/dnagen/mixture \\
    --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv \\
    --config.model.mixture_workdirs=/tmp/dnagen/infinigram_genes,/tmp/dnagen/real_gru

With the default feature the weights depend on the infinigram's longest match
at each position (bucketed at mixture_buckets), so an infinigram must be one
of the components; --config.model.mixture_feature='' fits one set of weights.

Expected result on genes.csv (docs/infinigram.md): the infinigram (test 3.3859)
with an 8-minute GRU 3 x 256 (configs/real_genes_gru.py with
--config.train.max_minutes=8; test 3.7800) mixes to test 3.3007 (val 3.2995),
in about 3 minutes on a loaded 2-core CPU; with mixture_feature='' 3.3754.
With the 24-epoch GRU (configs/real_genes_gru_1h.py; test 3.6102) instead:
test 3.2383 (val 3.2269), 4.9% below the Kneser-Ney 21-gram's 3.4067.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  config = default.get_config()
  config.model.name = "mixture"                   # a weighted sum of trained models (dnagen_jax.mixture)
  config.model.mixture_workdirs = ""              # comma-separated trained workdirs (at least two)
  config.model.mixture_feature = "longest_match"  # weights per bucket of: 'longest_match' (an infinigram's) or '' (one set)
  config.model.mixture_buckets = "4,8,12,16,20,24,32,64"  # bucket edges of the feature (match lengths)
  return config
