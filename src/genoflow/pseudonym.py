"""Keyed pseudonyms for patient ids: stable for one key, not reversible without it (decision 0018).

The key (``GENOFLOW_PSEUDONYM_KEY``) is the only thing between a pseudonym and its patient: anyone
holding it can pseudonymise a list of known ids and match them. So a job refuses to pseudonymise
with the public demo key, an empty key, a well-known placeholder or a short key unless the
environment says the data are a demo (``GENOFLOW_ALLOW_DEMO_KEY=1``); see :func:`check_pseudonym_key`.
Outputs record only the key's :func:`key_fingerprint`, never the key.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["pseudonymise", "pseudonym_order", "key_fingerprint", "weak_key_reason", "check_pseudonym_key",
           "DEMO_PSEUDONYM_KEY", "ALLOW_DEMO_KEY_ENV", "MIN_KEY_LENGTH"]

DEMO_PSEUDONYM_KEY = "genoflow-demo-key-not-for-real-patients"  # public: it is in this file
ALLOW_DEMO_KEY_ENV = "GENOFLOW_ALLOW_DEMO_KEY"  # "1": the data are a demo, a weak key is allowed
MIN_KEY_LENGTH = 16
# Values people leave in config files; compared case-insensitively, ignoring '-', '_' and spaces.
_PLACEHOLDERS = frozenset({
    "changeme", "changemenow", "secret", "password", "passwd", "demo", "test", "testing", "example", "default",
    "key", "pseudonymkey", "genoflow", "admin", "none", "null", "todo", "xxx", "replaceme", "setme", "dev",
    "insecure", "notasecret", "yoursecretkey", "secretkey", "mysecret", "letmein", "123456", "12345678",
    "1234567890", "qwerty",
})
_FINGERPRINT_DOMAIN = b"genoflow pseudonym key fingerprint v1"


def pseudonymise(patient_id: str, key: str) -> str:
    """``P`` + the first 16 hex digits of HMAC-SHA256(key, patient_id).

    >>> pseudonymise("PT00001", "k")
    'Pb1b5194d715384da'
    """
    digest = hmac.new(key.encode(), patient_id.encode(), hashlib.sha256).hexdigest()
    return "P" + digest[:16]


def pseudonym_order(patient_ids, key: str) -> list[int]:
    """Positions of ``patient_ids`` sorted by their pseudonyms: the order every step output stores samples in.

    Sorting by a keyed hash makes a row's place (and ``sample_index``) unrelated to the raw id, which a
    cohort's files are usually sorted by; without the key it reveals nothing.

    >>> pseudonym_order(["PT00001", "PT00002", "PT00003"], "k") == sorted(
    ...     range(3), key=lambda i: pseudonymise(["PT00001", "PT00002", "PT00003"][i], "k"))
    True
    """
    pids = [pseudonymise(str(patient), key) for patient in patient_ids]
    return sorted(range(len(pids)), key=pids.__getitem__)


def key_fingerprint(key: str) -> str:
    """16 hex digits that tell keys apart without revealing them (recorded in step keys and inputs.json).

    An HMAC under the key of a fixed domain string, then SHA-256: no pseudonym or other use of the key
    shares it.

    >>> key_fingerprint("a-long-enough-secret-key") != key_fingerprint("another-long-secret-key")
    True
    """
    mac = hmac.new(key.encode(), _FINGERPRINT_DOMAIN, hashlib.sha256).digest()
    return hashlib.sha256(mac).hexdigest()[:16]


def weak_key_reason(key: str | None) -> str | None:
    """Why ``key`` must not protect real patients (unset, the demo key, empty, a placeholder, short), or None.

    >>> weak_key_reason("Change-Me")
    "is a well-known placeholder ('Change-Me')"
    >>> weak_key_reason("k3y-0f-at-least-16") is None
    True
    """
    if key is None:
        return "is not set, so the public demo key would be used"
    if key == DEMO_PSEUDONYM_KEY:
        return "is the public demo key"
    if not key.strip():
        return "is empty"
    if "".join(ch for ch in key.lower() if ch not in "-_ ") in _PLACEHOLDERS:
        return f"is a well-known placeholder ({key!r})"
    if len(key) < MIN_KEY_LENGTH:
        return f"is {len(key)} characters long; it needs at least {MIN_KEY_LENGTH}"
    return None


def check_pseudonym_key(key: str | None, *, allow_weak: bool, source: str = "GENOFLOW_PSEUDONYM_KEY") -> str:
    """The key to pseudonymise with; raises :class:`~genoflow.errors.InputError` when it is weak and not allowed.

    ``key`` None means unset (the demo key is returned when ``allow_weak``). The error is an input
    error: a job exits with :data:`~genoflow.errors.INPUT_ERROR_EXIT` and Airflow does not retry it.
    """
    from genoflow.errors import InputError

    reason = weak_key_reason(key)
    if reason and not allow_weak:
        raise InputError(source, f"{reason}. Pseudonyms made with a guessable key can be reversed by anyone with "
                         "a list of patient ids. Set a secret of at least "
                         f"{MIN_KEY_LENGTH} characters, e.g. export GENOFLOW_PSEUDONYM_KEY=\"$(openssl rand -hex 32)\" "
                         "(keep it: a new key gives new pseudonyms), or, for simulated demo data only, "
                         f"{ALLOW_DEMO_KEY_ENV}=1")
    return DEMO_PSEUDONYM_KEY if key is None else key
