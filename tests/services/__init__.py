"""Real services started for tests (HDFS daemons, a Spark standalone cluster, an MLflow server), each on
free loopback ports with its own state folder."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; another process may still take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def run_script(script: Path, *args: str, env: dict[str, str], timeout: float,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run a service script (hadoop/hdfs.sh, scripts/*.sh) with ``env`` over os.environ; on failure
    (with ``check``) raise with the tails of its output, which say why the service did not come up."""
    result = subprocess.run([str(script), *args], env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        name = f"{script.parent.name}/{script.name}"
        raise RuntimeError(f"{name} {' '.join(args)} exited {result.returncode}:\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result
