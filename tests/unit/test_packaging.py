"""The library zip spark-submit ships with every job (--py-files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from genoflow.packaging import build_py_files, package_sources


def test_package_sources__python_files_and_templates_only():
    names = set(package_sources())
    assert {"genoflow/__init__.py", "genoflow/config.py", "genoflow/pipeline/runner.py",
            "genoflow/reporting/templates/report.html.j2"} <= names
    assert all(name.startswith("genoflow/") and name.endswith((".py", ".j2")) for name in names)
    assert not any("__pycache__" in name for name in names)


def test_package_sources__rejects_a_folder_that_is_no_package(tmp_path):
    with pytest.raises(ValueError, match="package_dir must be a Python package folder"):
        package_sources(tmp_path)


def test_build_py_files__same_code_same_archive(tmp_path):
    first = build_py_files(tmp_path / "a")
    second = build_py_files(tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    assert build_py_files(tmp_path / "a") == first  # written once
    assert [p.name for p in (tmp_path / "a").iterdir()] == [first.name]  # no temporary left


def test_build_py_files__changed_code_new_archive(tmp_path):
    import genoflow

    copy = tmp_path / "src" / "genoflow"
    shutil.copytree(os.path.dirname(genoflow.__file__), copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = build_py_files(tmp_path / "out", copy)
    (copy / "config.py").write_text((copy / "config.py").read_text() + "\n# changed\n")
    after = build_py_files(tmp_path / "out", copy)
    assert before != after
    with zipfile.ZipFile(after) as archive:
        assert archive.read("genoflow/config.py").endswith(b"# changed\n")


def test_build_py_files__importable_from_the_zip_alone(tmp_path):
    """A Python without site-packages (-S) and without PYTHONPATH imports genoflow from the zip."""
    archive = build_py_files(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import genoflow.config as c; "
            "print(c.__file__); print(c.run_key('d', {'train': {}}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-S", "-c", code, str(archive)], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == f"{archive}/genoflow/config.py"
    from genoflow.config import run_key

    assert out[1] == run_key("d", {"train": {}})
