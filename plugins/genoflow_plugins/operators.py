"""Thin operators: store arguments, build the hook in execute(), return what downstream needs."""

from __future__ import annotations

import json
from collections.abc import Sequence

from airflow.sdk import BaseOperator

__all__ = ["ResolveDatasetVersionOperator", "PromoteChampionOperator"]


class ResolveDatasetVersionOperator(BaseOperator):
    """Version the raw cohort with DVC and fix this run's identity.

    Returns (as XCom) ``dataset_version`` (DVC hash), ``git_commit``, the effective ``params``
    (params.yaml deep-merged with the run's params/conf), ``params_json`` and ``run_key``.
    """

    template_fields: Sequence[str] = ("target",)

    def __init__(self, *, target: str = "data/raw", push: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.target = target
        self.push = push

    def execute(self, context):
        from genoflow.config import Settings, load_params, run_key
        from genoflow.versioning import code_commit
        from genoflow_plugins.hooks import DvcHook

        settings = Settings()
        hook = DvcHook(settings.home)
        version = hook.track(self.target, push=self.push)
        # Only params.yaml's sections: Airflow also puts every run-conf key (e.g. a drift trigger's
        # reason) into params, and those must not change what is computed or its run key.
        file_params = load_params(settings.params_file)
        overrides = {k: v for k, v in dict(context["params"]).items() if k in file_params}
        params = load_params(settings.params_file, overrides=overrides)
        key = run_key(version, params)
        self.log.info("dataset %s at %s; run key %s", self.target, version, key)
        return {"dataset_version": version, "git_commit": code_commit(), "params": params,
                "params_json": json.dumps(params, sort_keys=True), "run_key": key,
                "storage_root": settings.storage_root}


class PromoteChampionOperator(BaseOperator):
    """Register each target's candidate, alias it ``challenger`` and gate the ``champion`` alias."""

    template_fields: Sequence[str] = ("run_key", "params_json")

    def __init__(self, *, run_key: str, params_json: str, **kwargs):
        super().__init__(**kwargs)
        self.run_key = run_key
        self.params_json = params_json

    def execute(self, context):
        from genoflow_plugins.hooks import MlflowRegistryHook

        decisions = MlflowRegistryHook().promote(self.run_key, json.loads(self.params_json))
        for d in decisions:
            self.log.info("%s v%s -> %s: %s", d["model_name"], d["version"],
                          "champion" if d["promoted"] else "challenger", d["reason"])
        return decisions
