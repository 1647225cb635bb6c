"""Spark job: the genoflow align step (spark-submit jobs/align.py --help)."""

import sys

from genoflow.pipeline.runner import main

if __name__ == "__main__":
    sys.exit(main("align"))
