"""API keys: who may call the protected routes, and under which caller id.

Keys come from ``GENOFLOW_API_KEYS`` (comma-separated; each caller is named ``key-<8 hex>``, the
start of its key's sha256) and from ``GENOFLOW_API_KEYS_FILE``, one ``caller_id: sha256:<hex>`` line
per key (a plain key after the colon is accepted too, but a hash keeps the file from being a
secret). The file is re-read on the first request after it changes (one ``stat`` per request), so
keys are added and revoked without a restart. Make a line for a new key with::

    python -c 'import secrets; from genoflow.serving.auth import hash_key; k = secrets.token_urlsafe(32); \
print("give the caller:", k); print("alice:", hash_key(k))'

or hash an existing key read from stdin (it then stays out of ``ps`` and the shell history)::

    python -c 'import sys; from genoflow.serving.auth import hash_key; print(hash_key(sys.stdin.readline().strip()))'
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from genoflow.errors import InputError
from genoflow.serving.errors import ServingError

__all__ = ["require_api_key", "key_unless_public", "KeyRing", "hash_key", "fingerprint", "read_key_file",
           "caller_of", "CALLER_STATE_KEY", "ANONYMOUS", "REJECTED"]

log = logging.getLogger(__name__)

CALLER_STATE_KEY = "genoflow_caller"  # request.state attribute: the caller id of an accepted key
ANONYMOUS = "anonymous"  # no key checked (a public route, or refused before authentication, e.g. 413)
REJECTED = "rejected"  # a key was required and none valid was sent
CALLER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (GENOFLOW_API_KEYS[_FILE])")
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <an API key>")


def hash_key(key: str) -> str:
    """The keys-file form of ``key``: ``sha256:<64 hex>``."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def fingerprint(key: str) -> str:
    """Caller id of a ``GENOFLOW_API_KEYS`` key: ``key-`` and the first 8 hex digits of its sha256."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def read_key_file(path: str) -> list[tuple[bytes, str]]:
    """(sha256 digest, caller id) of each key in a keys file.

    Raises
    ------
    InputError
        The file cannot be read, a line is not ``caller_id: key``, or a caller id or key repeats
        (never quoting the key).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read the API keys file (GENOFLOW_API_KEYS_FILE): {error}") from None
    entries: list[tuple[bytes, str]] = []
    callers: dict[str, int] = {}
    digests: dict[bytes, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        caller, colon, value = (part.strip() for part in line.partition(":"))
        if not colon or not value:
            raise InputError(path, "expected 'caller_id: sha256:<64 hex>' (or 'caller_id: <key>')", line=number)
        if not CALLER_ID.fullmatch(caller):
            # Not quoted: a malformed line may be a key pasted on its own.
            raise InputError(path, "the caller id (before ':') is not 1-64 letters, digits or ._@+- "
                                   "(starting with a letter or digit)", line=number)
        if caller in callers:
            raise InputError(path, f"caller id {caller!r} repeats line {callers[caller]}", line=number)
        hashed = _HASHED.fullmatch(value)
        digest = bytes.fromhex(hashed.group(1)) if hashed else hashlib.sha256(value.encode()).digest()
        if digest in digests:
            raise InputError(path, f"{caller!r} has the same key as {digests[digest]!r}: a request could not "
                                   "be told apart", line=number)
        callers[caller], digests[digest] = number, caller
        entries.append((digest, caller))
    return entries


class KeysUnavailable(ServingError):
    """The keys file became unreadable or invalid: refuse everyone (503) until it is fixed."""

    status = 503


class KeyRing:
    """The accepted keys (as sha256 digests) and their caller ids.

    Parameters
    ----------
    env_keys : iterable of str
        ``GENOFLOW_API_KEYS``' keys, named by `fingerprint`.
    path : str, optional
        ``GENOFLOW_API_KEYS_FILE``. Read now (an invalid file raises `InputError`) and again on the
        first `caller` after its inode, size, mtime or ctime change; write it by rename
        (``mv new keys``) so a request never reads half a file. A file that turns invalid or
        disappears makes every protected request a 503 (logged once), not a fall-back to old keys:
        a key being revoked must not live on because of a typo.
    """

    def __init__(self, env_keys: Iterable[str] = (), path: str | None = None):
        self._fixed = [(hashlib.sha256(k.encode()).digest(), fingerprint(k)) for k in sorted(set(env_keys))]
        self.path = path
        self._stamp: tuple | None = None
        self._from_file: list[tuple[bytes, str]] = []
        self._problem: str | None = None
        if path:
            self._from_file = read_key_file(path)
            self._stamp = _stamp(path)

    def __bool__(self) -> bool:
        return bool(self._fixed or self.path)

    def callers(self) -> list[str]:
        return [caller for _, caller in (*self._fixed, *self._from_file)]

    def caller(self, presented: str) -> str | None:
        """The caller id of ``presented``, or None; `KeysUnavailable` while the keys file is broken."""
        if self.path:
            self._follow_file()
            if self._problem:
                raise KeysUnavailable([f"the API keys file is invalid or missing ({self._problem}); "
                                       "ask the operator to fix GENOFLOW_API_KEYS_FILE"])
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for stored, caller in (*self._fixed, *self._from_file):
            # Every digest is compared, in constant time: timing tells nothing about a near miss or which key matched.
            if hmac.compare_digest(digest, stored):
                found = caller
        return found

    def _follow_file(self) -> None:
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._from_file = read_key_file(self.path)
        except InputError as error:
            self._from_file, self._problem = [], "see the server log" if stamp else "file missing"
            log.error("API keys file rejected, refusing every protected request until it is fixed: %s", error)
            return
        self._problem = None
        log.info("API keys file %s re-read: callers %s", self.path, ", ".join(c for _, c in self._from_file))


def _stamp(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


async def require_api_key(request: Request, key: Annotated[str | None, Depends(_header)],
                          bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Pass when ``X-API-Key`` or ``Authorization: Bearer`` holds an accepted key, naming its caller
    in ``request.state``; else 401."""
    presented = key or (bearer.credentials if bearer else None)
    caller = request.app.state.keys.caller(presented) if presented else None
    setattr(request.state, CALLER_STATE_KEY, caller or REJECTED)
    if caller is None:
        raise HTTPException(401, "missing or invalid API key: send it as X-API-Key or Authorization: Bearer",
                            headers={"WWW-Authenticate": "Bearer"})


def key_unless_public(name: str):
    """A dependency: `require_api_key` unless ``name`` is in the settings' ``public_routes``."""

    async def check(request: Request, key: Annotated[str | None, Depends(_header)],
                    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if name not in request.app.state.settings.public_routes:
            await require_api_key(request, key, bearer)

    return check


def caller_of(scope) -> str:
    """Who made a request, once answered: its caller id, ``rejected`` or ``anonymous``."""
    return scope.get("state", {}).get(CALLER_STATE_KEY, ANONYMOUS)
