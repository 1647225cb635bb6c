"""Lineage of a registered model: version -> MLflow run -> dataset version -> raw files, code commit.

The chain is read back from what the pipeline recorded, never re-derived: the model version's
run, the run's tags (``genoflow.dataset_version`` is the DVC hash of the raw cohort,
``mlflow.source.git.commit`` the code), DVC's directory listing of that hash (from the local DVC
cache, else from the remote: each file's path, md5 and size, and where the remote keeps it) and
the git commit of the project whose ``.dvc`` pointer records that hash (cohort_ingest commits
one for every cohort it ingests).
"""

from __future__ import annotations

import json
from pathlib import Path

from genoflow.errors import GenoflowError
from genoflow.registry.tracking import (
    TAG_DATASET_VERSION,
    TAG_GIT_COMMIT,
    TAG_MODEL_FAMILY,
    TAG_RUN_KEY,
    TAG_TARGET,
    filter_literal,
)

__all__ = ["LineageError", "model_lineage", "dataset_lineage", "format_lineage"]

DEFAULT_REF = "champion"
_TEXT_FILES = 12  # files listed in the text output (--json lists them all)


class LineageError(GenoflowError):
    """The model, version, alias or dataset version asked for does not exist."""


def model_lineage(model: str, ref: str | None, *, tracking_uri: str, home: str | Path,
                  target: str = "data/raw", remote: str | None = None) -> dict:
    """The lineage of ``model`` at version or alias ``ref`` (default ``champion``) as one dict.

    Raises
    ------
    LineageError
        An unknown model, version or alias (listing what exists), a run without a dataset
        version, or a dataset version neither in the DVC cache nor on the remote.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    version = _model_version(client, model, ref or DEFAULT_REF)
    run = client.get_run(version.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    tags = run.data.tags
    dataset_version = tags.get(TAG_DATASET_VERSION)
    if not dataset_version:
        raise LineageError(f"run {run.info.run_id} of {model} v{version.version} has no {TAG_DATASET_VERSION} tag: "
                           "it was not trained by the genoflow pipeline")
    aliases = sorted(version.aliases)
    return {
        "model": {"name": model, "version": version.version, "aliases": aliases, "source": version.source,
                  "status": version.status, "promotion": version.tags.get("genoflow.promotion"),
                  "promotion_reason": version.tags.get("genoflow.promotion_reason")},
        "run": {"id": run.info.run_id, "name": run.info.run_name, "status": run.info.status,
                "experiment": {"id": experiment.experiment_id, "name": experiment.name},
                "target": tags.get(TAG_TARGET), "family": tags.get(TAG_MODEL_FAMILY), "run_key": tags.get(TAG_RUN_KEY),
                "metrics": dict(sorted(run.data.metrics.items())), "artifact_uri": run.info.artifact_uri},
        "code": {"git_commit": tags.get(TAG_GIT_COMMIT)},
        "dataset": dataset_lineage(home, dataset_version, target=target, remote=remote),
        "tracking_uri": tracking_uri,
    }


def _model_version(client, model: str, ref: str):
    """Version ``ref`` (digits) or the version alias ``ref`` points at."""
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(model)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        raise LineageError(f"no registered model {model!r} (registered: {', '.join(names) or 'none'})") from None
    try:
        return client.get_model_version(model, ref) if ref.isdigit() else client.get_model_version_by_alias(model, ref)
    except MlflowException:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = {filter_literal(model)}"))
        aliases = ", ".join(f"{a} -> v{v}" for a, v in sorted(registered.aliases.items())) or "none"
        kind = "version" if ref.isdigit() else "alias"
        raise LineageError(f"{model} has no {kind} {ref!r} (versions: {', '.join(map(str, versions)) or 'none'}; "
                           f"aliases: {aliases})") from None


def dataset_lineage(home: str | Path, dataset_version: str, *, target: str = "data/raw",
                    remote: str | None = None) -> dict:
    """What DVC knows of ``dataset_version`` (a ``.dir`` hash of ``target``): its files and where they are.

    Returns
    -------
    dict
        ``version``, ``target``, ``git_commit`` (the project commit whose pointer records it, or
        None), ``current`` (whether the workspace pointer records it), ``remote`` (name, url),
        ``n_files``, ``size``, ``files``: one dict per file, shallow paths first: ``path`` (relative to
        ``target``), ``md5``, ``size``, ``in_cache``, ``on_remote``, ``remote_uri``.
    """
    from genoflow.versioning import dvc_remote, dvc_version, open_dvc_repo, pointer_commit

    home = Path(home)
    current = (home / f"{target}.dvc").exists() and dvc_version(home, target) == dataset_version
    remote_name, remote_url = dvc_remote(home, remote)
    with open_dvc_repo(home) as repo:
        cache = repo.cache.local
        remote_odb = repo.cloud.get_remote_odb(remote_name) if remote_name else None
        entries = _listing(cache, remote_odb, dataset_version, remote_name)
        oids = [entry["md5"] for entry in entries]
        on_remote = set(remote_odb.oids_exist(oids)) if remote_odb else set()
        # Shallow paths first: the VCF and reference, then the per-patient files.
        ordered = sorted(entries, key=lambda e: (e["relpath"].count("/"), e["relpath"]))
        files = [_file(entry, cache, remote_odb, on_remote) for entry in ordered]
    return {"version": dataset_version, "target": target, "git_commit": pointer_commit(home, target, dataset_version),
            "current": current, "remote": {"name": remote_name, "url": remote_url}, "n_files": len(files),
            "size": sum(f["size"] for f in files if f["size"] is not None), "files": files}


def _listing(cache, remote_odb, dataset_version: str, remote_name: str | None) -> list[dict]:
    """DVC's ``.dir`` object (``[{"md5", "relpath"}, ...]``) from the local cache, else the remote."""
    if not dataset_version.endswith(".dir"):
        raise LineageError(f"dataset version {dataset_version!r} is not a DVC directory hash (<md5>.dir)")
    local = Path(cache.oid_to_path(dataset_version))
    if local.exists():
        return json.loads(local.read_text())
    if remote_odb is not None:
        path = remote_odb.oid_to_path(dataset_version)
        if remote_odb.fs.exists(path):
            return json.loads(remote_odb.fs.cat_file(path))
    where = f"nor on the DVC remote {remote_name!r}" if remote_name else "and no DVC remote is configured"
    raise LineageError(f"dataset version {dataset_version} is not in the local DVC cache {where}")


def _file(entry: dict, cache, remote_odb, on_remote: set[str]) -> dict:
    md5 = entry["md5"]
    local = Path(cache.oid_to_path(md5))
    remote_path = remote_odb.oid_to_path(md5) if remote_odb else None
    size = local.stat().st_size if local.exists() else None
    if size is None and md5 in on_remote:
        size = remote_odb.fs.info(remote_path)["size"]
    return {"path": entry["relpath"], "md5": md5, "size": size, "in_cache": local.exists(),
            "on_remote": md5 in on_remote,
            "remote_uri": remote_odb.fs.unstrip_protocol(remote_path) if remote_odb else None}


# --- text -----------------------------------------------------------------------------------------


def format_lineage(lineage: dict) -> str:
    """The lineage as readable text (the dict itself is the ``--json`` output)."""
    model, run, dataset = lineage["model"], lineage["run"], lineage["dataset"]
    aliases = f" (aliases: {', '.join(model['aliases'])})" if model["aliases"] else ""
    metrics = "  ".join(f"{k}={v:.4g}" for k, v in run["metrics"].items()) or "none"
    remote = dataset["remote"]
    pointer = (f"{dataset['target']}.dvc in git commit {dataset['git_commit']}" if dataset["git_commit"]
               else f"{dataset['target']}.dvc not committed to git")
    lines = [
        f"model    {model['name']} v{model['version']}{aliases}, {model['status']}",
        f"         promotion: {model['promotion'] or '-'}"
        + (f" ({model['promotion_reason']})" if model["promotion_reason"] else ""),
        f"run      {run['id']} ({run['name']}), {run['status']}, experiment {run['experiment']['name']!r} "
        f"(id {run['experiment']['id']})",
        f"         target {run['target']}, model family {run['family']}, run key {run['run_key']}",
        f"metrics  {metrics}",
        f"code     git commit {lineage['code']['git_commit']}",
        f"dataset  {dataset['version']} (DVC hash of {dataset['target']}): {dataset['n_files']} files, "
        f"{_size(dataset['size'])}" + (", the workspace's current version" if dataset["current"] else ""),
        f"         {pointer}",
        f"         DVC remote {remote['name']}: {remote['url']}" if remote["name"] else "         no DVC remote",
        "files    path  size  md5  remote",
    ]
    for f in dataset["files"][:_TEXT_FILES]:
        where = f["remote_uri"] if f["on_remote"] else "NOT on the remote"
        lines.append(f"         {f['path']}  {_size(f['size'])}  {f['md5']}  {where}")
    if dataset["n_files"] > _TEXT_FILES:
        lines.append(f"         ... and {dataset['n_files'] - _TEXT_FILES} more files (--json lists them all)")
    return "\n".join(lines)


def _size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
