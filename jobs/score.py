"""spark-submit entry point: the same job as `lakescore score`.

spark-submit --properties-file spark_conf/local.conf jobs/score.py DEPLOYMENT [--run-id ID]
"""

import sys

from lakescore.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
