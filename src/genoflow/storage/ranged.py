"""Byte-range reads of one file under the storage root from plain Python (Spark's Python workers have no JVM).

``file://`` (or a bare path) is opened locally and read with seek; ``hdfs://`` goes through WebHDFS with
the ``hdfs`` package (:class:`~genoflow.storage.webhdfs.FailoverClient`: a DataNode that is down is
excluded and the NameNode asked for another, as Hadoop's clients do). A :class:`RangedFile` is
small and picklable (the URI, the NameNode's HTTP address, the user): the driver builds it with
:meth:`genoflow.storage.HadoopStorage.ranged`, which knows the Hadoop configuration, and broadcasts
it; the file or the HTTP client is opened lazily, once per process, where it is read.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from genoflow.storage.hadoop import temp_uri

__all__ = ["RangedFile", "webhdfs_address"]

WEBHDFS_DEFAULT_PORT = 9870  # dfs.namenode.http-address's default port (Hadoop 3)


@dataclass
class RangedFile:
    """One file, read by byte ranges.

    Parameters
    ----------
    uri : str
        ``file:///...``, a local path, or ``hdfs://authority/...``.
    webhdfs : str, optional
        The NameNode's HTTP address(es), ``http://host:port`` (several joined by ``;`` for HA: the
        client fails over); required for ``hdfs://``.
    user : str, optional
        The HDFS user WebHDFS acts as (no Kerberos).
    replication : int, optional
        How many replicas a file written here gets: the client's ``dfs.replication``, as Spark's writer
        would use (WebHDFS otherwise takes the DataNode's own setting).
    """

    uri: str
    webhdfs: str | None = None
    user: str | None = None
    replication: int | None = None
    _handle: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        scheme = urlsplit(self.uri).scheme
        if scheme not in ("", "file", "hdfs"):
            raise ValueError(f"RangedFile: uri {self.uri!r}: expected file:// or hdfs://, found {scheme}://")
        if scheme == "hdfs" and not self.webhdfs:
            raise ValueError(f"RangedFile: uri {self.uri!r}: an hdfs:// file needs the NameNode's webhdfs address")

    def __getstate__(self):
        # The open file or HTTP session stays in this process; the reader reopens it where it lands.
        return {"uri": self.uri, "webhdfs": self.webhdfs, "user": self.user, "replication": self.replication}

    def __setstate__(self, state):
        self.__dict__.update(state, _handle=None)

    @property
    def is_local(self) -> bool:
        return urlsplit(self.uri).scheme != "hdfs"

    @property
    def path(self) -> str:
        """The local path, or the path inside HDFS."""
        parts = urlsplit(self.uri)
        return unquote(parts.path) if parts.scheme else self.uri

    def at(self, uri: str) -> RangedFile:
        """Another file on the same storage (same WebHDFS address and user)."""
        return replace(self, uri=uri)

    def read(self, offset: int, length: int | None = None) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end of the file; None: to the end)."""
        if self.is_local:
            handle = self._local()
            handle.seek(offset)
            return handle.read() if length is None else handle.read(length)
        from hdfs.util import HdfsError

        try:
            return self._client().read_range(self.path, offset, length)
        except HdfsError as error:
            if "out of the range" in str(error):  # WebHDFS refuses an offset at the end; a file read gives b""
                return b""
            raise

    def read_all(self) -> bytes:
        return self.read(0)

    def stat(self) -> tuple[int, int] | None:
        """(size in bytes, modification time in ms), or None when the file does not exist."""
        if self.is_local:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return None
            return st.st_size, st.st_mtime_ns // 1_000_000
        status = self._client().status(self.path, strict=False)
        return None if status is None else (int(status["length"]), int(status["modificationTime"]))

    def exists(self) -> bool:
        return self.stat() is not None

    @contextmanager
    def open_stream(self) -> Iterator[BinaryIO]:
        """The whole file as one sequential binary stream (one HTTP response on HDFS, not a request per read)."""
        if self.is_local:
            with open(self.path, "rb") as stream:
                yield stream
        else:
            response = self._client().open_response(self.path)
            try:
                yield response.raw
            finally:
                response.close()

    def open_seekable(self) -> BinaryIO:
        """A seekable binary file (for readers that jump about, e.g. to a Parquet file's footer and row groups).

        Local files are opened; on HDFS each read is one ranged WebHDFS request, buffered 1 MiB at a time.
        """
        if self.is_local:
            return open(self.path, "rb")  # noqa: SIM115 - the caller closes it
        return io.BufferedReader(_RangedRaw(self), buffer_size=1 << 20)

    def write_atomic(self, data: bytes, *, into_existing_folder: bool = False) -> None:
        """Write the file by temp + rename, so a reader sees all of it or nothing; an existing file is replaced.

        ``into_existing_folder``: write only where the folder still exists (FileNotFoundError otherwise), so a
        task still running after its step failed cannot bring back the temporary folder the step removed.
        """
        tmp = temp_uri(self.path, f"pid{os.getpid()}")  # its owner named, for genoflow gc
        folder = os.path.dirname(self.path) or "."
        if self.is_local:
            if not into_existing_folder:
                os.makedirs(folder, exist_ok=True)
            with open(tmp, "wb") as out:  # FileNotFoundError when the folder is gone
                out.write(data)
            os.replace(tmp, self.path)
            return
        client = self._client()
        if into_existing_folder and client.status(folder, strict=False) is None:
            raise FileNotFoundError(f"{self.uri}: its folder no longer exists")
        client.write_bytes(tmp, data, replication=self.replication)
        try:
            # WebHDFS rename refuses an existing destination: a rebuilt index replaces the old one.
            client.delete(self.path)
            client.rename(tmp, self.path)
        except BaseException:
            client.delete(tmp)
            raise

    def _local(self):
        if self._handle is None:
            self._handle = open(self.path, "rb")  # noqa: SIM115 - kept open for the next ranges
        return self._handle

    def _client(self):
        if self._handle is None:
            from genoflow.storage.webhdfs import FailoverClient

            self._handle = FailoverClient(self.webhdfs, user=self.user)
        return self._handle


def webhdfs_address(conf, uri: str) -> str:
    """The WebHDFS URL(s) of the NameNode serving ``uri`` (``hdfs://authority/...``), from a Hadoop configuration.

    ``conf`` is anything with ``get(key)`` returning a str or None (the JVM's Configuration through
    py4j, or a dict). A nameservice (HA: ``hdfs://<nameservice>/``) gives every NameNode's
    ``dfs.namenode.http-address.<ns>.<nn>`` joined by ``;``. Otherwise the key suffixed with the
    URI's authority (a nameservice, or ``host:port`` when one client talks to several clusters);
    then ``dfs.namenode.http-address`` (its host when it is this cluster's, else the URI's host);
    port 9870 when unset.
    """
    parts = urlsplit(uri)
    authority, host = parts.netloc, parts.hostname or ""
    ids = (conf.get(f"dfs.ha.namenodes.{authority}") or "").split(",")
    addresses = [conf.get(f"dfs.namenode.http-address.{authority}.{nn.strip()}") for nn in ids if nn.strip()]
    addresses = [a for a in addresses if a] or [conf.get(f"dfs.namenode.http-address.{authority}")]
    addresses = [a for a in addresses if a]
    if not addresses:
        configured = conf.get("dfs.namenode.http-address") or f"0.0.0.0:{WEBHDFS_DEFAULT_PORT}"
        http_host, port = configured.rsplit(":", 1)
        default_fs = urlsplit(conf.get("fs.defaultFS") or "").netloc
        # 0.0.0.0 (hdfs-default.xml: bind everywhere), or the address of another cluster's NameNode:
        # keep the port, take the URI's host.
        if http_host in ("", "0.0.0.0") or (authority != default_fs and http_host != host):
            http_host = host
        addresses = [f"{http_host}:{port}"]
    return ";".join(a if "://" in a else f"http://{a}" for a in addresses)


class _RangedRaw(io.RawIOBase):
    """A RangedFile as a seekable raw stream: each read is one byte-range read."""

    def __init__(self, file: RangedFile):
        self._file, self._at = file, 0
        stat = file.stat()
        if stat is None:
            raise FileNotFoundError(file.uri)
        self._size = stat[0]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._at = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence] + offset
        return self._at

    def readinto(self, buffer) -> int:
        n = min(len(buffer), max(self._size - self._at, 0))
        if n == 0:
            return 0
        data = self._file.read(self._at, n)
        buffer[:len(data)] = data
        self._at += len(data)
        return len(data)
