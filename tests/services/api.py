"""Waiting for a model API process started by a test (tests/integration/test_serving.py, test_api_bombs.py,
test_api_audit.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.services import free_port
from tests.services.base import stop_process

__all__ = ["answering", "free_port", "wait_until_answering"]


def wait_until_answering(process, url: str, tail: Callable[[], str], *, route: str = "/health") -> None:
    """Return once ``url + route`` answers 200; fail the test if the process exits or ~2 minutes pass."""
    for _ in range(600):  # bounded: at most ~2 minutes for imports and the first model load
        if process.poll() is not None:
            pytest.fail(f"the API exited with {process.returncode}:\n{tail()}")
        try:
            if httpx.get(f"{url}{route}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the API did not come up:\n{tail()}")


@contextmanager
def answering(process: subprocess.Popen, url: str, tail: Callable[[], str], *,
              route: str = "/health") -> Iterator[None]:
    """While the API ``process`` answers on ``url``; then it is stopped (terminated, killed after 30 s)."""
    try:
        wait_until_answering(process, url, tail, route=route)
        yield
    finally:
        stop_process(process, timeout=30)
