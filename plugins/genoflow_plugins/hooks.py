"""Hooks own the DVC repository, HDFS and the MLflow registry; operators stay thin."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import BaseHook

from genoflow.storage.hadoop import SUCCESS_MARKER, TMP_INFIX

__all__ = ["DvcHook", "HdfsHook", "MlflowRegistryHook"]


class DvcHook(BaseHook):
    """DVC operations on the project repository (``repo_dir``).

    The dataset version is the content hash DVC records for the tracked folder: the ``md5`` of
    its ``.dvc`` file, the same key under which ``dvc push`` stores it on the remote.
    """

    hook_name = "DVC"

    def __init__(self, repo_dir: str | Path, remote: str | None = None):
        """``remote`` names a DVC remote; None means the repository's default, which is the
        ``GENOFLOW_DVC_REMOTE_URL`` remote (e.g. WebHDFS) when that is set (:mod:`genoflow.dvc_remote`)."""
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

    def pull(self, target: str) -> str:
        """``dvc pull`` the version ``<target>.dvc`` records from the remote; returns that version."""
        from genoflow.versioning import dvc_pull

        return dvc_pull(self.repo_dir, target, remote=self.remote)


class HdfsHook(BaseHook):
    """HDFS through WebHDFS (the ``hdfs`` package, HdfsCLI): paths, committed step outputs, the
    dataset versions on a DVC remote, NameNode health.

    Where HDFS is: ``webhdfs_url`` (``http://namenode:9870``) and ``user``, else the Airflow
    connection ``conn_id`` (host, port = the NameNode's HTTP port, login = the HDFS user, extra
    ``{"use_ssl": true}`` for HTTPS), e.g. ``AIRFLOW_CONN_HDFS_DEFAULT='{"conn_type": "webhdfs",
    "host": "namenode", "port": 9870, "login": "hdfs"}'``. Paths may be HDFS paths (``/genoflow``)
    or URIs (``hdfs://namenode:8020/genoflow``, ``webhdfs://namenode:9870/dvc``).
    """

    conn_name_attr = "conn_id"
    default_conn_name = "hdfs_default"
    conn_type = "webhdfs"
    hook_name = "HDFS (WebHDFS)"

    def __init__(self, conn_id: str = default_conn_name, webhdfs_url: str | None = None, user: str | None = None,
                 timeout: float = 30):
        super().__init__()
        self.conn_id = conn_id
        self.webhdfs_url = webhdfs_url
        self.user = user
        self.timeout = timeout
        self._client = None

    def get_conn(self):
        """The HdfsCLI ``InsecureClient`` (simple authentication: the user travels as ``user.name``)."""
        if self._client is None:
            from hdfs import InsecureClient

            if self.webhdfs_url is None:
                conn = self.get_connection(self.conn_id)
                scheme = "https" if conn.extra_dejson.get("use_ssl") else "http"
                self.webhdfs_url = f"{scheme}://{conn.host}:{conn.port or 9870}"
                self.user = self.user or conn.login
            self._client = InsecureClient(self.webhdfs_url, user=self.user, timeout=self.timeout)
        return self._client

    @staticmethod
    def path_of(uri: str) -> str:
        """The HDFS path of ``uri`` (``hdfs://nn:8020/a/b`` -> ``/a/b``); paths pass through."""
        from urllib.parse import urlsplit

        return (urlsplit(uri).path or "/") if "://" in uri else uri

    def exists(self, uri: str) -> bool:
        return self.get_conn().status(self.path_of(uri), strict=False) is not None

    def list(self, uri: str) -> list[str]:
        """Names directly under ``uri`` (sorted); empty when it does not exist."""
        client = self.get_conn()
        path = self.path_of(uri)
        return sorted(client.list(path)) if client.status(path, strict=False) else []

    def file_count(self, uri: str) -> int:
        """Files under ``uri``, recursively (one NameNode call)."""
        return int(self.get_conn().content(self.path_of(uri))["fileCount"])

    def read_json(self, uri: str):
        import json

        with self.get_conn().read(self.path_of(uri), encoding="utf-8") as reader:
            return json.load(reader)

    def committed_outputs(self, storage_root: str) -> dict[str, list[dict]]:
        """The committed step outputs under ``storage_root``, by dataset version.

        Returns ``{dataset_version: [{"step", "key", "uri", "run_key"}, ...]}`` from each committed
        folder's ``inputs.json``; folders without ``_SUCCESS`` (temporary, failed) are not outputs.
        """
        steps_uri = f"{storage_root.rstrip('/')}/steps"
        by_version: dict[str, list[dict]] = {}
        for step in self.list(steps_uri):
            for key in self.list(f"{steps_uri}/{step}"):
                uri = f"{steps_uri}/{step}/{key}"
                if TMP_INFIX in key or not self.exists(f"{uri}/{SUCCESS_MARKER}"):
                    continue
                inputs = self.read_json(f"{uri}/inputs.json") if self.exists(f"{uri}/inputs.json") else {}
                version = inputs.get("dataset_version", "unknown")
                by_version.setdefault(version, []).append(
                    {"step": step, "key": key, "uri": uri, "run_key": inputs.get("run_key")})
        return by_version

    def dvc_versions(self, remote_uri: str) -> list[dict]:
        """The dataset versions (DVC directory hashes, ``<md5>.dir``) stored on the DVC remote at
        ``remote_uri``, each with ``files`` (in its manifest) and ``complete`` (every file's object is
        on the remote, i.e. ``dvc pull`` of that version would succeed)."""
        objects = f"{self.path_of(remote_uri).rstrip('/')}/files/md5"
        present = {f"{prefix}{name}" for prefix in self.list(objects) for name in self.list(f"{objects}/{prefix}")}
        versions = []
        for oid in sorted(o for o in present if o.endswith(".dir")):
            manifest = self.read_json(f"{objects}/{oid[:2]}/{oid[2:]}")
            missing = [entry["relpath"] for entry in manifest if entry["md5"] not in present]
            versions.append({"version": oid, "files": len(manifest), "complete": not missing,
                             "missing": missing[:10]})
        return versions

    def namenode_health(self) -> dict:
        """The NameNode's state from its JMX servlet: ``live_datanodes``, ``safe_mode`` (bool and the
        NameNode's own words), capacity, and ``writable`` (a live DataNode and not in safe mode)."""
        session = self.get_conn()._session
        url = f"{self.webhdfs_url}/jmx"
        query = {"qry": "Hadoop:service=NameNode,name=FSNamesystemState"}
        state = session.get(url, params=query, timeout=self.timeout).json()["beans"][0]
        info = session.get(url, params={"qry": "Hadoop:service=NameNode,name=NameNodeInfo"},
                           timeout=self.timeout).json()["beans"][0]
        live = int(state["NumLiveDataNodes"])
        safe_mode_text = info.get("Safemode", "")
        return {"webhdfs_url": self.webhdfs_url, "live_datanodes": live, "safe_mode": bool(safe_mode_text),
                "safe_mode_status": safe_mode_text, "capacity_remaining": int(state["CapacityRemaining"]),
                "files_total": int(state["FilesTotal"]), "writable": live > 0 and not safe_mode_text}


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
