"""The training run's report: one self-contained HTML page a person reads (QC, association, models,
promotion), built by the ``report`` Spark job after promotion.

Import-light: ``html``/``plots``/``stats`` import numpy, scipy and matplotlib; ``job`` Spark and MLflow.
"""
