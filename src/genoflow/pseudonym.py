"""Keyed pseudonyms for patient ids: stable for one key, not reversible without it."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["pseudonymise"]


def pseudonymise(patient_id: str, key: str) -> str:
    """``P`` + the first 16 hex digits of HMAC-SHA256(key, patient_id).

    >>> pseudonymise("PT00001", "k")
    'Pb1b5194d715384da'
    """
    digest = hmac.new(key.encode(), patient_id.encode(), hashlib.sha256).hexdigest()
    return "P" + digest[:16]
