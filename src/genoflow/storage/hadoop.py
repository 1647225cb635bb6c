"""URI-based file operations through the JVM's Hadoop FileSystem, so the same code runs on
``file://`` and ``hdfs://`` storage roots with no local-path assumptions."""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["HadoopStorage", "StepOutput", "TempOwner", "attempt_tag", "temp_uri", "temp_owner", "SUCCESS_MARKER",
           "TMP_INFIX"]

log = logging.getLogger(__name__)

# The commit markers, one home: a committed output holds SUCCESS_MARKER; an attempt's temporary
# sibling is named <final>TMP_INFIX... (plugins' HdfsHook and genoflow gc read both).
SUCCESS_MARKER = "_SUCCESS"
TMP_INFIX = ".tmp-"


def attempt_tag(environ: dict[str, str] | None = None) -> str:
    """A name-safe tag of this task attempt: ``<dag run id>-try<n>`` under Airflow, else ``pid<pid>``.

    Airflow exports the run id and try number to the task's environment, and spark-submit passes
    it on to the driver. HDFS path components may not contain ':' (run ids do), hence the cleaning.
    """
    env = os.environ if environ is None else environ
    run_id, try_number = env.get("AIRFLOW_CTX_DAG_RUN_ID"), env.get("AIRFLOW_CTX_TRY_NUMBER")
    if run_id and try_number:
        return f"{_name_safe(run_id)}-try{_name_safe(try_number)}"
    return f"pid{os.getpid()}"


def _name_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]


# <final>.tmp-<tag>-<random>[.host-<host>.pid<pid>] (names without the owner are from before decision 0019)
_TEMP_NAME = re.compile(rf"(?P<final>.+?){re.escape(TMP_INFIX)}(?P<tag>.+?)-(?P<nonce>[0-9a-f]{{8}})"
                        r"(?:\.host-(?P<host>[A-Za-z0-9_.-]+)\.pid(?P<pid>\d+))?")
_OWNER_SUFFIX = r"(?:\.host-[A-Za-z0-9_.-]+\.pid\d+)?"


def temp_uri(final_uri: str, tag: str, *, host: str | None = None, pid: int | None = None) -> str:
    """A temporary sibling of ``final_uri`` for one attempt: ``<final>.tmp-<tag>-<random>.host-<host>.pid<pid>``.

    The random part keeps concurrent attempts apart; the host and pid of the writing process let
    ``genoflow gc`` (:mod:`genoflow.storage.janitor`) keep a live attempt's folder and remove what a
    killed run left (decision 0019).
    """
    host = _name_safe(host or socket.gethostname())
    pid = os.getpid() if pid is None else pid
    return f"{final_uri}{TMP_INFIX}{_name_safe(tag)}-{uuid.uuid4().hex[:8]}.host-{host}.pid{pid}"


class TempOwner:
    """Who wrote a temporary entry, read back from its name: ``host`` and ``pid`` (None when not named)."""

    def __init__(self, tag: str, host: str | None, pid: int | None):
        self.tag, self.host, self.pid = tag, host, pid


def temp_owner(name: str) -> TempOwner | None:
    """The owner named in a temporary entry's ``name`` (:func:`temp_uri`), or None when it is not one.

    A name from before owners were recorded gives ``host=None``; its pid too, unless the tag was
    ``pid<n>`` or the bare pid of :meth:`~genoflow.storage.RangedFile.write_atomic`.
    """
    match = _TEMP_NAME.fullmatch(name)
    if match is None:
        return None
    tag, host, pid = match.group("tag"), match.group("host"), match.group("pid")
    if pid is None and host is None:
        legacy = re.fullmatch(r"(?:pid)?(\d+)", tag)  # the process id, but on which host is unknown
        pid = legacy.group(1) if legacy else None
    return TempOwner(tag, host, int(pid) if pid is not None else None)


class HadoopStorage:
    """File operations on URIs under ``root``, backed by the Spark session's Hadoop configuration."""

    def __init__(self, spark: SparkSession, root: str):
        self.spark = spark
        self.root = root.rstrip("/")
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()
        self._contexts = {}  # FileContext per scheme://authority (each one holds its own HDFS client)

    def uri(self, *parts: str) -> str:
        """The URI of ``parts`` joined under the root; InputError when a part would leave it (``..``)."""
        from genoflow.storage.paths import check_relative_uri_part

        for part in parts:
            check_relative_uri_part(self.root, part)
        return "/".join([self.root, *(p.strip("/") for p in parts)])

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, uri: str):
        return self._path(uri).getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        return bool(self._fs(uri).exists(self._path(uri)))

    def delete(self, uri: str) -> None:
        self._fs(uri).delete(self._path(uri), True)

    def mkdirs(self, uri: str) -> None:
        self._fs(uri).mkdirs(self._path(uri))

    def rename(self, src: str, dst: str) -> bool:
        """Rename ``src`` to ``dst`` atomically; False when ``dst`` already exists (never nests src inside it).

        FileSystem.rename moves a folder *into* an existing one, and an exists() check before it
        races with a concurrent commit; FileContext's rename with ``Rename.NONE`` is one NameNode
        operation (HDFS rename2) that refuses an existing destination.
        """
        jvm = self._jvm
        src_path, dst_path = self._path(src), self._path(dst)
        self._fs(dst).mkdirs(dst_path.getParent())
        context = self._file_context(dst_path)
        options = self.spark.sparkContext._gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
        options[0] = jvm.org.apache.hadoop.fs.Options.Rename.NONE
        try:
            context.rename(src_path, dst_path, options)
        except Exception as err:  # py4j wraps the Java exception
            if "FileAlreadyExistsException" in str(err):
                return False
            raise
        return True

    def _file_context(self, path):
        uri = path.toUri()
        key = f"{uri.getScheme()}://{uri.getAuthority()}"
        if key not in self._contexts:
            self._contexts[key] = self._jvm.org.apache.hadoop.fs.FileContext.getFileContext(uri, self._conf)
        return self._contexts[key]

    def list(self, uri: str) -> list[str]:
        """Names of the entries directly under ``uri`` (sorted)."""
        statuses = self._fs(uri).listStatus(self._path(uri))
        return sorted(str(s.getPath().getName()) for s in statuses)

    def list_status(self, uri: str) -> list[tuple[str, bool, int]]:
        """``(name, is_folder, mtime in ms)`` of each entry directly under ``uri`` (sorted by name)."""
        statuses = self._fs(uri).listStatus(self._path(uri))
        return sorted((str(s.getPath().getName()), bool(s.isDirectory()), int(s.getModificationTime()))
                      for s in statuses)

    def mtime(self, uri: str) -> int:
        """The modification time of a file or folder, in ms since the epoch."""
        return int(self._fs(uri).getFileStatus(self._path(uri)).getModificationTime())

    def identity(self, uri: str) -> dict:
        """What identifies a file's or folder's current content cheaply: size, file count, mtime."""
        fs, path = self._fs(uri), self._path(uri)
        status = fs.getFileStatus(path)
        if status.isDirectory():
            summary = fs.getContentSummary(path)
            return {"uri": uri, "files": int(summary.getFileCount()), "bytes": int(summary.getLength()),
                    "mtime": int(status.getModificationTime())}
        return {"uri": uri, "bytes": int(status.getLen()), "mtime": int(status.getModificationTime())}

    def read_bytes(self, uri: str) -> bytes:
        fs = self._fs(uri)
        stream = fs.open(self._path(uri))
        try:
            buf = self._jvm.java.io.ByteArrayOutputStream()
            self._jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, buf, 1 << 16, False)
            return bytes(buf.toByteArray())
        finally:
            stream.close()

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    def ranged(self, uri: str):
        """``uri`` as a :class:`~genoflow.storage.ranged.RangedFile`: byte ranges and streams read from plain
        Python, without the JVM (in Spark's Python workers too). ``hdfs://`` goes through WebHDFS, at the
        NameNode HTTP address of this session's Hadoop configuration, as this session's Hadoop user; files
        written there get this configuration's ``dfs.replication``, as Spark's writer gives them."""
        from genoflow.storage.ranged import RangedFile, webhdfs_address

        if not uri.startswith("hdfs://"):
            return RangedFile(uri)
        user = self._jvm.org.apache.hadoop.security.UserGroupInformation.getCurrentUser().getShortUserName()
        self._fs(uri)  # loads hdfs-default.xml / hdfs-site.xml into the configuration
        replication = self._conf.get("dfs.replication")
        return RangedFile(uri, webhdfs=webhdfs_address(self._conf, uri), user=str(user),
                          replication=int(replication) if replication else None)

    def ranged_or_none(self, uri: str, fallback_message: str):
        """:meth:`ranged`, or None where plain Python cannot reach ``uri`` (an hdfs:// without a WebHDFS
        address), logging ``fallback_message`` % (uri, reason): the caller goes through the JVM instead."""
        try:
            return self.ranged(uri)
        except Exception as err:  # noqa: BLE001 - whatever stops the Python route, the JVM's still works
            log.warning(fallback_message, uri, err)
            return None

    def write_bytes(self, uri: str, data: bytes) -> None:
        stream = self._fs(uri).create(self._path(uri), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    def put(self, local_path: str | os.PathLike, uri: str) -> bool:
        """Copy a local file or folder to ``uri`` with the commit protocol; False if ``uri`` already exists.

        For landing a cohort under a remote storage root (e.g. the raw data DVC pulled). The copy
        goes to a temporary sibling and is renamed into place, so readers never see half of it.
        """
        if self.exists(uri):
            return False
        tmp = temp_uri(uri, attempt_tag())
        try:
            self._fs(tmp).copyFromLocalFile(False, True, self._path(os.path.abspath(local_path)), self._path(tmp))
            if self.rename(tmp, uri):
                return True
            log.warning("%s was put there by someone else meanwhile; keeping that one", uri)
        except BaseException:
            self._delete_quietly(tmp)
            raise
        self._delete_quietly(tmp)
        return False

    def is_committed(self, uri: str) -> bool:
        """True when a step output folder was committed (its success marker exists)."""
        return self.exists(f"{uri}/{SUCCESS_MARKER}")

    @contextmanager
    def step_output(self, final_uri: str, attempt: str | None = None):
        """Write a step's output into a temporary sibling and commit it by rename.

        Yields a :class:`StepOutput` whose ``uri`` is the temporary folder, unique to this attempt
        (``<final>.tmp-<run id>-try<n>-<random>.host-<host>.pid<pid>``, :func:`temp_uri`), so concurrent
        runs never write into each other's folders. The folder is created first: a read-only or
        unreachable storage fails the step before any work. On success a ``_SUCCESS`` marker is
        written last and the folder is renamed to ``final_uri`` in one atomic step; on any error it
        is deleted, so nothing half-written is left behind (if the storage refuses even that, the next try of the same
        run removes it). If another run committed the same ``final_uri`` meanwhile (same inputs
        and params, so the same content), that output wins. ``attempt`` overrides :func:`attempt_tag`.
        """
        tag = _name_safe(attempt) if attempt else attempt_tag()
        self._remove_earlier_tries(final_uri, tag)
        tmp_uri = temp_uri(final_uri, tag)
        output = StepOutput(self, tmp_uri)
        try:
            self.mkdirs(tmp_uri)
            yield output
            self.write_text(f"{tmp_uri}/{SUCCESS_MARKER}", "")
            if not self.rename(tmp_uri, final_uri):
                log.warning("%s was committed by a concurrent run; keeping that one", final_uri)
                self.delete(tmp_uri)
        except BaseException:
            self._delete_quietly(tmp_uri)
            raise

    def _delete_quietly(self, uri: str) -> None:
        """Delete after a failure without hiding the failure (the storage may be what failed)."""
        try:
            self.delete(uri)
        except Exception as err:  # noqa: BLE001 - the original error is the one to report
            log.warning("could not remove the temporary %s (%s); the next try of this run removes it",
                        uri, str(err).splitlines()[0][:200])

    def _remove_earlier_tries(self, final_uri: str, tag: str) -> None:
        """Delete temporary folders that earlier tries of this Airflow run left (they have ended:
        Airflow starts a retry only after the previous try finished). Other runs' folders stay."""
        match = re.fullmatch(r"(.+)-try(\d+)", tag)
        if not match:
            return
        parent, name = final_uri.rsplit("/", 1)
        if not self.exists(parent):
            return
        prefix = f"{name}{TMP_INFIX}{match.group(1)}-try"
        for entry in self.list(parent):
            earlier = re.fullmatch(re.escape(prefix) + r"(\d+)-[0-9a-f]+" + _OWNER_SUFFIX, entry)
            if earlier and int(earlier.group(1)) < int(match.group(2)):
                log.info("removing %s/%s left by an earlier try of this run", parent, entry)
                self.delete(f"{parent}/{entry}")


class StepOutput:
    """The temporary folder a step writes into before it is committed."""

    def __init__(self, storage: HadoopStorage, uri: str):
        self.storage = storage
        self.uri = uri

    def path(self, name: str) -> str:
        return f"{self.uri}/{name}"

    def write_json(self, name: str, obj) -> None:
        import json

        self.storage.write_text(self.path(name), json.dumps(obj, indent=2, sort_keys=True, default=str))
