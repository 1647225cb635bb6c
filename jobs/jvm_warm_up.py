"""Spark job: run the pipeline on a small simulated cohort so the driver JVM's classes can be archived
(spark-submitted by `python -m genoflow.jvm_archive`, i.e. `make archive`; see genoflow.jvm_archive).

The workload lives here, next to its one caller, so that genoflow.jvm_archive (which the submitting
side imports) does not depend on the pipeline it runs (decision 0023).
"""

import argparse
import json
import sys
from pathlib import Path

from genoflow.config import load_params
from genoflow.pipeline.runner import main
from genoflow.simulate.cohort import make_demo_cohort

# Large enough for every step to take its usual path (PCA, association, scores, all model
# families), small enough to simulate and run in about a minute.
WARM_UP_COHORT = {"n_patients": 120, "sequence_length": 200_000, "seed": 11, "n_causal": 5, "reads_per_patient": 10}
WARM_UP_DATASET = "jvm-archive-warm-up"
# Every model family once, with the least fitting that still runs its code.
WARM_UP_TRAINING = {"cv_folds": 2,
                    "grid": {"logistic_regression": {"regParam": [0.1], "elasticNetParam": [0.0]},
                             "random_forest": {"numTrees": [5], "maxDepth": [3]},
                             "gbt": {"maxIter": [3], "maxDepth": [2]}}}
WARM_UP_TARGETS = {"disease_status": "binary"}  # replaces study.targets (a merge would keep the others)


def warm_up(work: Path) -> int:
    """Every pipeline step on a small simulated cohort, in this driver JVM; the first failing step's exit code, or 0."""
    make_demo_cohort(work / "data", **WARM_UP_COHORT)
    params = load_params(overrides={"train": WARM_UP_TRAINING})
    params["study"]["targets"] = dict(WARM_UP_TARGETS)
    params_json = json.dumps(params)
    for step in ("preprocess", "features", "train", "evaluate"):
        code = main(step, ["--storage-root", (work / "data").as_uri(), "--dataset-version", WARM_UP_DATASET,
                           "--params-json", params_json])
        if code:
            return code
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="an empty folder for the cohort and the steps' outputs")
    sys.exit(warm_up(parser.parse_args().work))
