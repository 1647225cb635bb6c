"""Paths that come from params.yaml or an Airflow run's conf, kept inside the root they are relative to.

A run's conf can set ``ingest.landing_dir``, ``ingest.target``, ``monitor.cohort_vcf``, the
``preprocess:`` inputs... Joined unchecked, ``../elsewhere`` or ``/etc`` (or a symlink out) would
make a run read, move or version folders outside the project or the storage root. Three checks,
one home (decision 0019):

* :func:`relative_name` validates the params schema's path keys (no ``..`` component), so a bad
  run conf is a :class:`~genoflow.errors.ParamsError` naming the key before any task works;
* :func:`confined_path` normalises a path under a local root where it is used and checks it stays there;
* :func:`check_relative_uri_part` guards :meth:`genoflow.storage.HadoopStorage.uri`, where every
  path relative to the storage root is joined.

A ParamsError is an InputError: the operators fail the task at once instead of retrying it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from genoflow.errors import InputError, ParamsError

__all__ = ["relative_name", "confined_path", "check_relative_uri_part"]


def relative_name(value: str) -> str:
    """``value`` unchanged, or ValueError when it climbs out with ``..`` (a pydantic AfterValidator).

    >>> relative_name("data/incoming/b7")
    'data/incoming/b7'
    >>> relative_name("../elsewhere")
    Traceback (most recent call last):
    ...
    ValueError: '../elsewhere' has a '..' component: paths stay inside the project or the storage root
    """
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        raise ValueError(f"{value!r} has a '..' component: paths stay inside the project or the storage root")
    return value


def confined_path(root: str | os.PathLike, key: str, value: str | os.PathLike, source: str = "params") -> Path:
    """``root / value`` normalised; it must lie inside ``root`` (``value`` may be relative or absolute).

    The check is on the text, as run conf can only choose text: ``..`` and absolute paths are
    resolved lexically, symlinks are not followed (a symlink in the project, e.g. a landing folder
    on another disk, is the operator's choice, not the run's).

    Parameters
    ----------
    root : path
        The folder ``value`` must stay in: the project for ``ingest.*``, the storage root's folder
        for paths under a ``file://`` storage root.
    key : str
        The params key ``value`` came from (``ingest.landing_dir``), for the message.
    value : path
        The path as given.
    source : str
        Where ``value`` came from (``run conf``, ``params.yaml``), for the message.

    Raises
    ------
    ParamsError
        ``<source>: <key>: <value> is outside <root> ...``.

    >>> confined_path("/project", "ingest.landing_dir", "data/incoming/b7")
    PosixPath('/project/data/incoming/b7')
    >>> confined_path("/project", "ingest.landing_dir", "../x")
    Traceback (most recent call last):
    ...
    genoflow.errors.ParamsError: params: ingest.landing_dir: '../x' is /x, outside /project: give a path inside \
/project (relative to it, or absolute)
    """
    base = Path(os.path.normpath(os.path.abspath(root)))
    path = Path(os.path.normpath(base / value))
    if not path.is_relative_to(base):
        raise ParamsError(source, key, f"{str(value)!r} is {path}, outside {base}: give a path inside "
                                       f"{base} (relative to it, or absolute)")
    return path


def check_relative_uri_part(root: str, part: str) -> None:
    """Refuse a part joined under the storage root ``root`` that climbs out of it with ``..``.

    Hadoop's Path normalises ``root/../x`` to ``x``'s parent's sibling, outside the root. (A leading
    ``/`` is harmless there: :meth:`~genoflow.storage.HadoopStorage.uri` strips it.)
    """
    if ".." in PurePosixPath(part).parts:
        raise InputError(part, f"has a '..' component and would leave the storage root {root}: paths in params and "
                               "run conf are relative to the storage root and stay inside it")
