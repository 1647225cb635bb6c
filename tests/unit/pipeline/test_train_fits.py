"""The train step fits each estimator on a cached assembled table: the models must be the ones a
plain ``Pipeline.fit`` gives (same rows, same order, same seed), so the held-out metrics do not move."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.models import build_pipeline, param_grid
from genoflow.pipeline.train import Plan, _fit_final

GRID = {"logistic_regression": {"regParam": [0.1]}, "random_forest": {"numTrees": [4], "maxDepth": [3]},
        "gbt": {"maxIter": [4], "maxDepth": [2]}}


@pytest.fixture(scope="module")
def table(spark):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=150) > 0).astype(float)
    rows = [(f"p{i}", float(y[i]), *map(float, x[i])) for i in range(150)]
    return spark.createDataFrame(rows, ["pid", "y", "a", "b", "c"]).cache()


@pytest.mark.parametrize("family", sorted(GRID))
def test_fit_final__the_model_a_pipeline_fit_gives(spark, table, family):
    features = ["a", "b", "c"]
    t = {"seed": 7}
    pipeline, estimator = build_pipeline(family, features=features, label="y", seed=7)
    expected = pipeline.fit(table.select("y", *features), params=param_grid(estimator, family, GRID[family])[0])
    model = _fit_final(Plan(family), "y", "binary", features, table, GRID[family], 0, t)

    def scores(fitted):
        return np.array([row.probability[1] for row in fitted.transform(table).orderBy("pid").collect()])

    assert [type(s).__name__ for s in model.stages] == [type(s).__name__ for s in expected.stages]
    np.testing.assert_allclose(scores(model), scores(expected), rtol=0, atol=1e-12)
