"""Dataset versions: the DVC content hash of the raw cohort is the version every run records."""

from __future__ import annotations

from pathlib import Path

__all__ = ["dvc_version", "dvc_track", "code_commit"]


def dvc_version(repo_dir: str | Path, target: str = "data/raw") -> str:
    """The content hash DVC recorded in ``<target>.dvc`` (the key it is stored under on the remote)."""
    import yaml

    pointer = Path(repo_dir) / f"{target}.dvc"
    if not pointer.exists():
        raise FileNotFoundError(f"{pointer}: not tracked by DVC yet (run `dvc add {target}`)")
    outs = yaml.safe_load(pointer.read_text()).get("outs") or []
    if not outs or "md5" not in outs[0]:
        raise ValueError(f"{pointer}: no md5 under outs; is it a DVC pointer file?")
    return outs[0]["md5"]


def dvc_track(repo_dir: str | Path, target: str = "data/raw", *, push: bool = True,
              remote: str | None = None) -> str:
    """``dvc add`` ``target`` (cheap when unchanged), optionally ``dvc push`` it; returns its version."""
    from dvc.repo import Repo

    with Repo(str(repo_dir)) as repo:
        repo.add(target)
        if push:
            repo.push(targets=[f"{target}.dvc"], remote=remote)
    return dvc_version(repo_dir, target)


def code_commit() -> str:
    """The git commit of the genoflow code that runs (``-dirty`` with local changes), else ``unknown``."""
    import subprocess

    import genoflow

    where = str(Path(genoflow.__file__).parent)
    try:
        sha = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
