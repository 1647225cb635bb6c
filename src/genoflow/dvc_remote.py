"""The DVC remote on HDFS (WebHDFS): where it is configured, and uploads that are atomic.

Where: a deployment points DVC at HDFS with ``GENOFLOW_DVC_REMOTE_URL`` (e.g.
``webhdfs://namenode:9870/genoflow/dvc``) and, without Kerberos, ``GENOFLOW_DVC_REMOTE_USER``
(the HDFS user; WebHDFS's ``user.name``). :func:`configure_remote` writes them as the default remote
``genoflow`` into ``.dvc/config.local`` (git-ignored, DVC's place for per-machine settings), so
the DAG's DVC hook and a person's ``dvc push`` / ``dvc pull`` use the same remote. Without the
variable the repository's own ``.dvc/config`` decides.

Atomic: fsspec's WebHDFS client creates the remote file at its final name and then appends to it,
so a push killed midway leaves a truncated object under its content hash, which the next push
skips as "already there". :class:`AtomicWebHDFS` uploads into ``<remote>/.genoflow-uploads/`` and
renames into place once complete (one NameNode operation). :func:`use_atomic_webhdfs` makes DVC use
it in this process; ``genoflow dvc ...`` runs DVC's own command line with it.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import secrets
from pathlib import Path

from fsspec.implementations.webhdfs import WebHDFile, WebHDFS

__all__ = ["REMOTE_NAME", "AtomicWebHDFS", "configure_remote", "remote_from_env", "use_atomic_webhdfs", "dvc_main"]

log = logging.getLogger(__name__)

REMOTE_NAME = "genoflow"
UPLOADS = ".genoflow-uploads"
# <remote root>/files/md5/<2 hex>/<rest of the hash>[.dir]: DVC 3's object layout
_OBJECT = re.compile(r"^(?P<root>.*)/files/md5/[0-9a-f]{2}/[0-9a-f]+(\.dir)?$")


def remote_from_env(environ: dict[str, str] | None = None) -> dict | None:
    """The remote's DVC config from ``GENOFLOW_DVC_REMOTE_URL`` / ``GENOFLOW_DVC_REMOTE_USER``, or None."""
    env = os.environ if environ is None else environ
    url = env.get("GENOFLOW_DVC_REMOTE_URL")
    if not url:
        return None
    config = {"url": url}
    if env.get("GENOFLOW_DVC_REMOTE_USER"):
        config["user"] = env["GENOFLOW_DVC_REMOTE_USER"]
    return config


def configure_remote(repo_dir: str | os.PathLike, config: dict | None = None, name: str = REMOTE_NAME) -> str | None:
    """Make ``config`` (default: :func:`remote_from_env`) the default DVC remote ``name`` in
    ``.dvc/config.local``; returns its name, or None when there is nothing to configure."""
    from dvc.config import Config

    config = config if config is not None else remote_from_env()
    if not config:
        return None
    dvc_dir = Path(repo_dir) / ".dvc"
    with Config(dvc_dir=str(dvc_dir)).edit("local") as local:
        if local.get("remote", {}).get(name) != config or local.get("core", {}).get("remote") != name:
            local.setdefault("remote", {})[name] = dict(config)
            local.setdefault("core", {})["remote"] = name
    return name


def _upload_path(path: str) -> str:
    """Where an upload to ``path`` is written before it is renamed into place (outside DVC's object folders)."""
    match = _OBJECT.match(path)
    folder = match.group("root") if match else posixpath.dirname(path)
    return f"{folder.rstrip('/')}/{UPLOADS}/{secrets.token_hex(12)}"


class _RenameOnCloseFile(WebHDFile):
    """Written at a temporary path; renamed to the final one when closed without error, else deleted."""

    def __init__(self, fs, temporary: str, final: str, **kwargs):
        super().__init__(fs, temporary, **kwargs)
        self.final = final
        self._failed = False

    def __exit__(self, exc_type, exc, tb):
        self._failed = exc_type is not None
        self.close()

    def close(self):
        if self.closed:
            return
        try:
            super().close()
        except BaseException:
            self._failed = True
            raise
        finally:
            if self._failed:
                self._remove_quietly()
        if not self._failed:
            self.fs.rename_into_place(self.path, self.final)

    def _remove_quietly(self):
        try:
            self.fs.rm(self.path)
        except Exception:  # noqa: BLE001 - the upload's own error is the one to report
            log.warning("could not remove the partial upload %s", self.path)


class AtomicWebHDFS(WebHDFS):
    """fsspec's WebHDFS, except that a file opened for writing appears at its path only once complete."""

    def _open(self, path, mode="rb", block_size=None, autocommit=True, replication=None, permissions=None,
              **kwargs):
        if "w" not in mode or not autocommit:
            return super()._open(path, mode=mode, block_size=block_size, autocommit=autocommit,
                                 replication=replication, permissions=permissions, **kwargs)
        temporary = _upload_path(path)
        self.makedirs(posixpath.dirname(temporary), exist_ok=True)
        return _RenameOnCloseFile(self, temporary, path, mode=mode, block_size=block_size or self.blocksize,
                                  tempdir=self.tempdir, autocommit=True, replication=replication,
                                  permissions=permissions)

    def rename_into_place(self, temporary: str, final: str) -> None:
        self.makedirs(posixpath.dirname(final), exist_ok=True)
        renamed = self._call("RENAME", method="put", path=temporary, destination=final).json().get("boolean")
        if not renamed:
            # WebHDFS refuses to replace an existing file: another push put the same content there.
            self.rm(temporary)
            if not self.exists(final):
                raise OSError(f"WebHDFS could not rename {temporary} to {final}")
        self.invalidate_cache(posixpath.dirname(final))


def use_atomic_webhdfs() -> None:
    """Make DVC's ``webhdfs://`` remotes upload through :class:`AtomicWebHDFS` in this process."""
    import dvc_webhdfs

    if getattr(dvc_webhdfs.WebHDFSFileSystem, "_genoflow_atomic", False):
        return

    def fs(self):
        if self._genoflow_fs is None:
            client = AtomicWebHDFS(**self.fs_args)
            client.session.verify = self._ssl_verify
            self._genoflow_fs = client
        return self._genoflow_fs

    dvc_webhdfs.WebHDFSFileSystem._genoflow_fs = None
    dvc_webhdfs.WebHDFSFileSystem.fs = property(fs)
    dvc_webhdfs.WebHDFSFileSystem._genoflow_atomic = True


def dvc_main(argv: list[str]) -> int:
    """DVC's own command line (``dvc <argv>``) with atomic WebHDFS uploads."""
    from dvc.cli import main

    use_atomic_webhdfs()
    return main(argv)
