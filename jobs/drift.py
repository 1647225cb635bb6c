"""Spark job: drift of an incoming cohort vs the champion's training data (spark-submit jobs/drift.py --help)."""

import sys

from genoflow.monitoring.job import main

if __name__ == "__main__":
    sys.exit(main())
