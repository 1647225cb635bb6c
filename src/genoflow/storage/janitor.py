"""``genoflow gc``: remove the temporary folders that killed runs left under the storage root.

Every step writes into ``<final>.tmp-<tag>-<random>.host-<host>.pid<pid>`` and commits by rename
(:meth:`genoflow.storage.HadoopStorage.step_output`); a failing step deletes its folder, and the
next try of the same Airflow run deletes its predecessors'. A run that is killed (OOM, a lost
worker, a cancelled DAG run never retried) leaves its folder behind, sometimes gigabytes of
half-written parquet. The janitor removes such a folder (or file) when

* it was last active (the newest modification time of it and of everything under it) more than
  ``older_than_s`` ago, and
* its writer is not known to be alive: the name records the host and pid of the writing
  process, and a folder of a pid still running on the host the janitor runs on is always kept.

A writer on another host cannot be asked, so its folder's last activity decides: a live Spark
step creates and closes files as it goes, so the default of 6 hours without any is far beyond
any live step's quiet time. Folders named before owners were recorded are judged by age only.

It walks only ``under`` (default ``steps``, where genoflow writes everything it commits) and does
not descend into committed outputs (a ``_SUCCESS`` marker) or into temporary entries, so a
cohort's thousands of patient folders are never listed (decision 0019).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

from genoflow.errors import GenoflowError
from genoflow.storage.hadoop import SUCCESS_MARKER, HadoopStorage, _name_safe, temp_owner

__all__ = ["DEFAULT_OLDER_THAN_S", "TempEntry", "find_temp_entries", "collect_garbage", "parse_duration"]

log = logging.getLogger(__name__)

DEFAULT_OLDER_THAN_S = 6 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class TempEntry:
    """One temporary folder or file, and what the janitor makes of it."""

    uri: str
    host: str | None  # the writer's host, None when the name does not record it
    pid: int | None
    idle_s: float  # seconds since it or anything under it last changed
    remove: bool
    reason: str


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with a unit ``s``, ``m``, ``h`` or ``d`` (``6h``, ``90m``, ``2d``).

    >>> parse_duration("90m")
    5400.0
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(text))
    if match is None:
        raise GenoflowError(f"--older-than: {text!r} is not a duration; give a number and a unit s, m, h or d "
                            "(e.g. 6h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def find_temp_entries(storage: HadoopStorage, *, older_than_s: float = DEFAULT_OLDER_THAN_S,
                      under: Iterable[str] = ("steps",), now_ms: int | None = None,
                      host: str | None = None) -> list[TempEntry]:
    """Every temporary entry under ``under`` (relative to the storage root), with its verdict.

    ``now_ms`` (default: now) and ``host`` (default: this host) are for tests.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    here = _name_safe(host or socket.gethostname())
    found = []
    for part in under:
        top = storage.uri(part)
        if storage.exists(top):
            found.extend(_judge(storage, uri, mtime, now_ms, older_than_s, here) for uri, mtime in _walk(storage, top))
    return found


def collect_garbage(storage: HadoopStorage, *, older_than_s: float = DEFAULT_OLDER_THAN_S,
                    under: Iterable[str] = ("steps",), dry_run: bool = False, now_ms: int | None = None,
                    host: str | None = None) -> list[TempEntry]:
    """Remove the orphaned temporary entries :func:`find_temp_entries` finds (none with ``dry_run``)."""
    entries = find_temp_entries(storage, older_than_s=older_than_s, under=under, now_ms=now_ms, host=host)
    for entry in entries:
        if entry.remove and not dry_run:
            log.info("removing %s (%s)", entry.uri, entry.reason)
            storage.delete(entry.uri)
    return entries


def _walk(storage: HadoopStorage, uri: str):
    """``(uri, mtime)`` of the temporary entries under ``uri``; committed outputs and temps are not entered."""
    statuses = storage.list_status(uri)
    if any(name == SUCCESS_MARKER for name, _, _ in statuses):
        return
    for name, is_folder, mtime in statuses:
        child = f"{uri}/{name}"
        if temp_owner(name) is not None:
            yield child, mtime
        elif is_folder:
            yield from _walk(storage, child)


def _judge(storage: HadoopStorage, uri: str, mtime: int, now_ms: int, older_than_s: float, here: str) -> TempEntry:
    owner = temp_owner(uri.rsplit("/", 1)[-1])
    if owner.host == here and owner.pid is not None and _alive(owner.pid):
        return TempEntry(uri, owner.host, owner.pid, (now_ms - mtime) / 1000, False,
                         f"its writer, pid {owner.pid}, is running on this host")
    # Young at the top means young: only an old-looking entry is listed all the way down.
    last = mtime if (now_ms - mtime) / 1000 < older_than_s else _last_activity(storage, uri, mtime)
    idle_s = (now_ms - last) / 1000
    if idle_s < older_than_s:
        return TempEntry(uri, owner.host, owner.pid, idle_s, False,
                         f"last changed {_hours(idle_s)} ago, less than {_hours(older_than_s)}")
    return TempEntry(uri, owner.host, owner.pid, idle_s, True,
                     f"{_writer_state(owner, here)} and nothing in it changed for {_hours(idle_s)}")


def _writer_state(owner, here: str) -> str:
    if owner.host == here:
        return f"its writer, pid {owner.pid}, is not running on this host"
    if owner.host is not None:
        return f"its writer, pid {owner.pid} on {owner.host}, cannot be checked from here"
    return "its name does not say which host wrote it (named before decision 0019)"


def _last_activity(storage: HadoopStorage, uri: str, mtime: int) -> int:
    """The newest modification time of ``uri`` and everything under it (ms)."""
    newest = mtime
    pending = [uri]
    while pending:
        folder = pending.pop()
        try:
            statuses = storage.list_status(folder)
        except Exception:  # noqa: BLE001 - a file (write_atomic's temp), or removed meanwhile
            continue
        for name, is_folder, child_mtime in statuses:
            newest = max(newest, child_mtime)
            if is_folder:
                pending.append(f"{folder}/{name}")
    return newest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"
