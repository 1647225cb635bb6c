"""URI-based file operations through the JVM's Hadoop FileSystem, so the same code runs on
``file://`` and ``hdfs://`` storage roots with no local-path assumptions."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["HadoopStorage", "StepOutput"]

log = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS"


class HadoopStorage:
    """File operations on URIs under ``root``, backed by the Spark session's Hadoop configuration."""

    def __init__(self, spark: SparkSession, root: str):
        self.spark = spark
        self.root = root.rstrip("/")
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def uri(self, *parts: str) -> str:
        """The URI of ``parts`` joined under the root."""
        return "/".join([self.root, *(p.strip("/") for p in parts)])

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, uri: str):
        return self._path(uri).getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        return bool(self._fs(uri).exists(self._path(uri)))

    def delete(self, uri: str) -> None:
        self._fs(uri).delete(self._path(uri), True)

    def rename(self, src: str, dst: str) -> bool:
        """Rename ``src`` to ``dst``; False when ``dst`` already exists (never nests src inside it)."""
        fs = self._fs(src)
        if fs.exists(self._path(dst)):
            return False
        fs.mkdirs(self._path(dst).getParent())
        return bool(fs.rename(self._path(src), self._path(dst)))

    def list(self, uri: str) -> list[str]:
        """Names of the entries directly under ``uri`` (sorted)."""
        statuses = self._fs(uri).listStatus(self._path(uri))
        return sorted(str(s.getPath().getName()) for s in statuses)

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

    def write_bytes(self, uri: str, data: bytes) -> None:
        stream = self._fs(uri).create(self._path(uri), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    def is_committed(self, uri: str) -> bool:
        """True when a step output folder was committed (its success marker exists)."""
        return self.exists(f"{uri}/{SUCCESS_MARKER}")

    @contextmanager
    def step_output(self, final_uri: str):
        """Write a step's output into a temporary sibling and commit it by rename.

        Yields a :class:`StepOutput` whose ``uri`` is the temporary folder. On success a
        ``_SUCCESS`` marker is written last and the folder is renamed to ``final_uri``; on any
        error the temporary folder is deleted, so nothing half-written is left behind. If another
        run committed the same ``final_uri`` meanwhile (same inputs and params), that output wins.
        """
        tmp_uri = f"{final_uri}.tmp-{uuid.uuid4().hex[:12]}"
        output = StepOutput(self, tmp_uri)
        try:
            yield output
            self.write_text(f"{tmp_uri}/{SUCCESS_MARKER}", "")
            if not self.rename(tmp_uri, final_uri):
                log.warning("%s was committed by a concurrent run; keeping that one", final_uri)
                self.delete(tmp_uri)
        except BaseException:
            self.delete(tmp_uri)
            raise


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
