"""Spark job: the genoflow evaluate step (spark-submit jobs/evaluate.py --help)."""

import sys

from genoflow.pipeline.runner import main

if __name__ == "__main__":
    sys.exit(main("evaluate"))
