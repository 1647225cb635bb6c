"""The model API: the registry's champion models served over HTTP, scored with numpy.

``python -m genoflow.serving`` runs it (uvicorn); `create_app` builds the FastAPI app. Each served
target's model is ``models:/genoflow_<target>@champion``: the version's run artifacts
``portable_model.json`` (`genoflow.models.portable`) and ``feature_spec.json``
(`genoflow.features.spec.FeatureSpec`, the transform training used) are loaded at start-up and
again whenever the alias moves; requests touch neither Spark nor MLflow. A binary target answers a
``risk``, a quantitative one a ``prediction``; a target without a champion (its candidates failed
the promotion gate, decision 0011) answers 503 with the registry's reason.
"""

from genoflow.serving.app import create_app
from genoflow.serving.settings import ServingSettings

__all__ = ["create_app", "ServingSettings"]
