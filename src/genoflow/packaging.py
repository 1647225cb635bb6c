"""The genoflow library as one zip for spark-submit ``--py-files``, so executors need no install of it.

Spark puts ``.zip`` (and ``.egg``) py-files on the executors' ``sys.path`` ahead of anything
installed in their Python; a ``.whl`` it would copy but not import from. The archive is built from
the ``genoflow`` package this process imports (the code that versions the run is the code that
ships), is deterministic (sorted entries, fixed timestamps, no bytecode) and is named by its
content hash, so an unchanged library is written once and every run records which code it shipped.
See docs/decisions/0004-shipping-the-library-to-executors.md.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

__all__ = ["build_py_files", "package_sources"]

# 1980-01-01, the earliest time a zip entry can hold: the archive's bytes depend only on the sources.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def package_sources(package_dir: str | os.PathLike | None = None) -> dict[str, bytes]:
    """The package's source files as ``{archive name: bytes}``, e.g. ``genoflow/config.py``.

    ``package_dir`` defaults to the folder of the imported ``genoflow`` package. Bytecode caches
    and editor leftovers are skipped; only ``.py`` files, typed-package markers and Jinja2 templates
    (``.j2``: the report job's driver loads its page template from this zip) ship.
    """
    if package_dir is None:
        import genoflow

        package_dir = Path(genoflow.__file__).parent
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise ValueError(f"package_sources: package_dir must be a Python package folder, got {package_dir}")
    sources = {}
    for path in sorted(package_dir.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".typed", ".j2") and "__pycache__" not in path.parts:
            sources[f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}"] = path.read_bytes()
    return sources


def build_py_files(out_dir: str | os.PathLike, package_dir: str | os.PathLike | None = None) -> Path:
    """Write ``<out_dir>/genoflow-<content hash>.zip`` (once) and return its path.

    Atomic: the zip is written to a temporary name and renamed, so a concurrent or interrupted
    build never leaves a partial archive under the final name.
    """
    payload = _zip_bytes(package_sources(package_dir))
    out_dir = Path(out_dir)
    final = out_dir / f"genoflow-{hashlib.sha256(payload).hexdigest()[:16]}.zip"
    if final.exists():
        return final
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    tmp.write_bytes(payload)
    os.replace(tmp, final)
    return final


def _zip_bytes(sources: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(sources):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, sources[name])
    return buffer.getvalue()
