"""The audit trail: one JSON line per request to a protected route, and a request id on every response.

A record says who (the caller id of the key, ``rejected`` or ``anonymous``), when (UTC), from
where (the client address as the server saw it), what (method, route template, status, the model
name and version that scored) and which input: ``subjects``, a keyed hash (HMAC-SHA256, 128 bits)
of each patient's covariates and genotypes as scored. Patient values never enter the file: with
the hash key (``GENOFLOW_AUDIT_HASH_KEY``) an auditor holding a patient's values can show they were
scored (`subject_hash`), but the log alone cannot be searched for a genotype or an age, which
an unkeyed hash of a few dosages and an age would allow by trying them all.

The file is opened ``O_APPEND`` and each record is one ``write``, so concurrent writers (several
API processes) never interleave within a line and nothing earlier is rewritten.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from genoflow.serving.auth import caller_of
from genoflow.serving.metrics import MODEL_STATE_KEY, REQUEST_ID_STATE_KEY

__all__ = ["AuditLog", "AuditMiddleware", "subject_hash", "SUBJECTS_STATE_KEY"]

log = logging.getLogger(__name__)

SUBJECTS_STATE_KEY = "genoflow_subjects"  # request.state attribute: the subject hashes a route scored
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class AuditLog:
    """An append-only JSON-lines file of request records.

    Parameters
    ----------
    path : str
        Created (mode 0600) if missing; its folder must exist.
    hash_key : str, optional
        Secret keying `subject`; None: a random one for this process (a warning says so).
    """

    def __init__(self, path: str, hash_key: str | None = None):
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise ValueError(f"cannot open the audit log GENOFLOW_AUDIT_LOG={path!r}: {error.strerror}") from None
        if hash_key is None:
            log.warning("GENOFLOW_AUDIT_HASH_KEY is not set: audit subject hashes use a random key and cannot be "
                        "matched to patients after this process stops")
        self._hash_key = hash_key or secrets.token_hex(32)

    def subject(self, covariates: Mapping[str, object], genotypes: Mapping[str, object]) -> str:
        return subject_hash(self._hash_key, covariates, genotypes)

    def write(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            os.write(self._fd, line)  # one write of an O_APPEND descriptor: never interleaved with another
        except OSError as error:
            log.error("audit record of request %s NOT written to %s: %s", record.get("request_id"), self.path,
                      error.strerror)

    def close(self) -> None:
        os.close(self._fd)


class AuditMiddleware:
    """Give each request an id and, for a protected route, append its audit record once it is answered.

    The id is the client's ``X-Request-ID`` when it is 1-128 characters of letters, digits and
    ``._:-`` (so it can be traced across services), else a fresh uuid4; either way it is echoed in
    the response's ``X-Request-ID`` and written in the access log line and the audit record.

    Parameters
    ----------
    app : ASGI app
    audit : AuditLog or None
        None: ids only, no records.
    public_paths : frozenset of str
        Routes not audited (open to anyone: the settings' ``public_routes``).
    known_paths : frozenset of str
        The app's routes: a request refused before routing (a 413 on Content-Length) is still
        audited under its path; one to no route at all (a 404) is not.
    """

    def __init__(self, app, audit: AuditLog | None, public_paths: frozenset[str], known_paths: frozenset[str]):
        self.app = app
        self.audit = audit
        self.public_paths = public_paths
        self.known_paths = known_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = _client_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})[REQUEST_ID_STATE_KEY] = request_id
        received = datetime.now(UTC)
        status = 500  # if the app fails before answering

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or scope["path"]
            if self.audit is not None and route in self.known_paths and route not in self.public_paths:
                self.audit.write(_record(scope, request_id, received, route, status))


def subject_hash(hash_key: str, covariates: Mapping[str, object], genotypes: Mapping[str, object]) -> str:
    """The audit records' hash of one patient's values, as an auditor holding the hash key recomputes it.

    HMAC-SHA256 keyed with ``hash_key`` of the canonical JSON (sorted keys, no spaces) of
    ``{"covariates": ..., "genotypes": ...}`` as the route read them, first 32 hex digits: the
    same for the same values in any key order.
    """
    canonical = json.dumps({"covariates": covariates, "genotypes": genotypes}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hmac.new(hash_key.encode(), canonical.encode(), hashlib.sha256).hexdigest()[:32]


def _client_request_id(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            return value.decode("ascii") if _SANE_REQUEST_ID.fullmatch(value) else None
    return None


def _record(scope, request_id: str, received: datetime, route: str, status: int) -> dict:
    state = scope.get("state", {})
    client = scope.get("client")
    model, _, version = state.get(MODEL_STATE_KEY, "").rpartition("/v")
    record = {"time": received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
              "request_id": request_id, "caller": caller_of(scope), "client": client[0] if client else None,
              "method": scope["method"], "route": route, "status": status,
              "model": model or None, "model_version": version or None}
    subjects = state.get(SUBJECTS_STATE_KEY)
    if subjects is not None:
        record["subjects"] = subjects
    return record
