"""genoflow.config stays a leaf; the modules that submit jobs do not depend on the pipeline (decision 0023).

DAG files at parse time: tests/dags/test_parse_time.py."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.conftest import REPO

SRC = REPO / "src" / "genoflow"

# Each module's genoflow imports, at the top or inside functions (an import inside a function is
# still a dependency: config -> jvm_archive -> pipeline.runner -> ... -> config was such a cycle).
ALLOWED = {
    # genoflow.spark_submit: only config's __getattr__ for the moved names, on use (bench/genomics.py and
    # tests/integration/test_faults.py still import them from config); drop it when they move.
    "config": {"genoflow.pseudonym", "genoflow.params", "genoflow.spark_submit"},
    "spark_submit": {"genoflow.config"},
    "jvm_archive": {"genoflow.config", "genoflow.pseudonym", "genoflow.spark_submit"},
    "packaging": {"genoflow"},
    "spark": {"genoflow.config", "genoflow.spark_submit", "genoflow.storage.health"},
}


def _genoflow_imports(module: str) -> set[str]:
    tree = ast.parse((SRC / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "genoflow":
            found |= {f"genoflow.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "genoflow":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "genoflow"}
    return found


def test_submission_modules__import_only_downwards():
    for module, allowed in ALLOWED.items():
        assert _genoflow_imports(module) <= allowed, (module, _genoflow_imports(module) - allowed)


def test_importing_config__loads_no_spark_and_no_pipeline():
    code = ("import json, sys; import genoflow.config; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('genoflow', 'pyspark'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert set(json.loads(out.stdout)) <= {"genoflow", "genoflow.config", "genoflow.pseudonym", "genoflow.errors"}

