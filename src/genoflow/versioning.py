"""Dataset versions: the DVC content hash of the raw cohort is the version every run records."""

from __future__ import annotations

from pathlib import Path

__all__ = ["dvc_version", "dvc_track", "dvc_pull", "dvc_remote", "open_dvc_repo", "code_commit", "git_toplevel",
           "git_commit_paths", "pointer_commit"]


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
    path = Path(repo_dir).resolve() / target  # DVC resolves relative targets against the cwd, not the repo
    with open_dvc_repo(repo_dir) as repo:
        repo.add(str(path))
        if push:
            repo.push(targets=[f"{path}.dvc"], remote=remote)
    return dvc_version(repo_dir, target)


def dvc_pull(repo_dir: str | Path, target: str = "data/raw", *, remote: str | None = None) -> str:
    """``dvc pull`` ``target`` (the version its ``.dvc`` pointer records) from the remote; returns that version."""
    path = Path(repo_dir).resolve() / target
    with open_dvc_repo(repo_dir) as repo:
        repo.pull(targets=[f"{path}.dvc"], remote=remote)
    return dvc_version(repo_dir, target)


def open_dvc_repo(repo_dir: str | Path):
    """The DVC repository at ``repo_dir``, with the deployment's remote (GENOFLOW_DVC_REMOTE_URL) as its
    default and WebHDFS uploads that only ever show complete objects (:mod:`genoflow.dvc_remote`)."""
    from dvc.repo import Repo

    from genoflow.dvc_remote import configure_remote, use_atomic_webhdfs

    use_atomic_webhdfs()
    configure_remote(repo_dir)
    return Repo(str(repo_dir))


def dvc_remote(repo_dir: str | Path, remote: str | None = None) -> tuple[str | None, str | None]:
    """The name and URL of DVC remote ``remote`` (default: the repository's default remote)."""
    with open_dvc_repo(repo_dir) as repo:
        name = remote or repo.config["core"].get("remote")
        remotes = repo.config.get("remote", {})
    if name is None:
        return None, None
    if name not in remotes:
        from genoflow.errors import GenoflowError

        raise GenoflowError(f"{repo_dir}: no DVC remote {name!r} (configured: {', '.join(remotes) or 'none'})")
    return name, remotes[name].get("url")


def _git(repo_dir: str | Path, *args: str, **kwargs) -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, text=True, check=True,
                          **kwargs).stdout.strip()


def git_toplevel(repo_dir: str | Path) -> Path:
    """The git work tree holding ``repo_dir``; a clear error when there is none."""
    import subprocess

    from genoflow.errors import GenoflowError

    try:
        return Path(_git(repo_dir, "rev-parse", "--show-toplevel"))
    except (OSError, subprocess.CalledProcessError) as err:
        raise GenoflowError(f"{repo_dir} is not in a git repository, so the DVC pointer cannot be committed "
                            f"(git init it, or set ingest.commit: false): {getattr(err, 'stderr', err)}") from None


def git_commit_paths(repo_dir: str | Path, paths: list[Path], message: str) -> str:
    """Commit exactly ``paths`` (other staged changes stay staged); returns the commit that holds them.

    When they are unchanged nothing is committed and the last commit that touched them is returned.
    """
    import os

    names = [os.path.relpath(p, repo_dir) for p in paths if Path(p).exists()]
    _git(repo_dir, "add", "--", *names)
    if _git(repo_dir, "status", "--porcelain", "--", *names):
        # A project without a git identity (CI, a fresh container) still gets an attributable commit.
        identity = [] if _git_identity(repo_dir) else ["-c", "user.name=genoflow",
                                                        "-c", "user.email=genoflow@localhost"]
        _git(repo_dir, *identity, "commit", "--quiet", "-m", message, "--", *names)
    return _git(repo_dir, "log", "-1", "--format=%H", "--", *names)


def _git_identity(repo_dir: str | Path) -> bool:
    import subprocess

    try:
        return bool(_git(repo_dir, "config", "user.email"))
    except subprocess.CalledProcessError:
        return False


def pointer_commit(repo_dir: str | Path, target: str, dataset_version: str) -> str | None:
    """The newest git commit whose ``<target>.dvc`` records ``dataset_version``, or None."""
    import subprocess

    import yaml

    pointer = f"{target}.dvc"
    try:
        commits = _git(repo_dir, "log", "--format=%H", "--", pointer).split()
    except (OSError, subprocess.CalledProcessError):
        return None
    for sha in commits:
        try:
            outs = yaml.safe_load(_git(repo_dir, "show", f"{sha}:{pointer}")).get("outs") or []
        except (subprocess.CalledProcessError, AttributeError):
            continue  # the commit deleted the pointer
        if outs and outs[0].get("md5") == dataset_version:
            return sha
    return None


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
