"""Spark job: the genoflow features step (spark-submit jobs/features.py --help)."""

import sys

from genoflow.pipeline.runner import main

if __name__ == "__main__":
    sys.exit(main("features"))
