"""Spark job: run the pipeline on a small simulated cohort so the driver JVM's classes can be archived
(spark-submitted by `python -m genoflow.jvm_archive`, i.e. `make archive`; see genoflow.jvm_archive)."""

import argparse
import sys
from pathlib import Path

from genoflow.jvm_archive import warm_up

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="an empty folder for the cohort and the steps' outputs")
    sys.exit(warm_up(parser.parse_args().work))
