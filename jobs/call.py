"""Spark job: the genoflow call step (spark-submit jobs/call.py --help)."""

import sys

from genoflow.pipeline.runner import main

if __name__ == "__main__":
    sys.exit(main("call"))
