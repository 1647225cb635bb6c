"""Spark job: the QC and model report of one training run (spark-submit jobs/report.py --help)."""

import sys

from genoflow.reporting.job import main

if __name__ == "__main__":
    sys.exit(main())
