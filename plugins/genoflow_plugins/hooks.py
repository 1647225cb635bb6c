"""Hooks own the DVC repository and the MLflow registry; operators stay thin."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import BaseHook

__all__ = ["DvcHook", "MlflowRegistryHook"]


class DvcHook(BaseHook):
    """DVC operations on the project repository (``repo_dir``).

    The dataset version is the content hash DVC records for the tracked folder: the ``md5`` of
    its ``.dvc`` file, the same key under which ``dvc push`` stores it on the remote.
    """

    hook_name = "DVC"

    def __init__(self, repo_dir: str | Path, remote: str | None = None):
        super().__init__()
        self.repo_dir = Path(repo_dir)
        self.remote = remote

    def track(self, target: str, push: bool = True) -> str:
        """``dvc add`` ``target`` (a no-op when unchanged), optionally ``dvc push``; returns its hash."""
        from genoflow.versioning import dvc_track

        return dvc_track(self.repo_dir, target, push=push, remote=self.remote)

    def ingest(self, landing: str, params: dict, target: str = "data/raw", mode: str = "replace",
               commit: bool = True, full_check_records: int = 2000) -> dict:
        """Validate the cohort at ``landing``, make it (or add it to) ``target``, ``dvc add`` + ``dvc push``,
        commit the pointer."""
        from genoflow.ingest import ingest_cohort

        return ingest_cohort(self.repo_dir, landing, params, target=target, mode=mode, remote=self.remote,
                             commit=commit, full_check_records=full_check_records)

    def version(self, target: str) -> str:
        """The DVC content hash recorded in ``<target>.dvc``."""
        from genoflow.versioning import dvc_version

        return dvc_version(self.repo_dir, target)


class MlflowRegistryHook(BaseHook):
    """The MLflow tracking server/registry (URI from the environment's genoflow settings)."""

    hook_name = "MLflow registry"

    def __init__(self, tracking_uri: str | None = None, artifact_root: str | None = None):
        super().__init__()
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root

    def promote(self, run_key: str, params: dict) -> list[dict]:
        from genoflow.config import Settings
        from genoflow.registry import promote_pipeline_run

        settings = Settings()
        decisions = promote_pipeline_run(
            run_key, params, tracking_uri=self.tracking_uri or settings.mlflow_tracking_uri,
            artifact_root=self.artifact_root or settings.mlflow_artifact_root,
        )
        return [d.as_dict() for d in decisions]
