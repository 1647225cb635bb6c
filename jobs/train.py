"""Spark job: the genoflow train step (spark-submit jobs/train.py --help)."""

import sys

from genoflow.pipeline.runner import main

if __name__ == "__main__":
    sys.exit(main("train"))
