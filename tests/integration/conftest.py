"""Integration tests share the session fixtures `project` and `first_run` from tests/conftest.py.

Re-exported here for the imports tests already use.
"""

from tests.project import DAG_ID, VENV_BIN, Project, make_project, trigger  # noqa: F401
