"""Spark job: the genoflow preprocess step (spark-submit jobs/preprocess.py --help)."""

import sys

from genoflow.pipeline.runner import main

if __name__ == "__main__":
    sys.exit(main("preprocess"))
