"""ResolveDatasetVersionOperator with and without a triggering Asset event (real DVC, no scheduler).

The scheduler path itself is tests/integration/test_data_aware_retraining.py; here the cases it
cannot reach cheaply: several events, and an event whose version has been superseded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

DVC = str(Path(sys.executable).parent / "dvc")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A DVC project with a two-file data/raw (resolve only versions it; no cohort validation here)."""
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run([DVC, "remote", "add", "-d", "local", str(tmp_path / "remote")], cwd=tmp_path, check=True,
                   capture_output=True)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "cohort.vcf").write_text("##fileformat=VCFv4.2\n")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.setenv("GENOFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("GENOFLOW_PARAMS", raising=False)
    return tmp_path


def _event(version: str, minute: int, run: str = "manual__1"):
    from genoflow_plugins.assets import RAW_COHORT

    return SimpleNamespace(asset=RAW_COHORT, extra={"dataset_version": version, "git_commit": "abc"},
                           timestamp=datetime(2026, 11, 25, 1, minute, tzinfo=UTC), source_dag_id="cohort_ingest",
                           source_run_id=run, source_task_id="ingest_cohort")


def _context(*events) -> dict:
    from genoflow_plugins.assets import RAW_COHORT

    return {"params": {}, "triggering_asset_events": {RAW_COHORT: list(events)} if events else {}}


def _resolve():
    from genoflow_plugins.operators import ResolveDatasetVersionOperator

    return ResolveDatasetVersionOperator(task_id="resolve_dataset_version", target="data/raw")


def _workspace_version(home: Path) -> str:
    from genoflow.versioning import dvc_track

    return dvc_track(home, "data/raw", push=False)


def test_resolve__manual_run_versions_the_workspace(home):
    result = _resolve().execute(_context())
    assert result["dataset_version"] == _workspace_version(home) and result["asset_event"] is None


def test_resolve__asset_run_takes_the_newest_event_version(home):
    version = _workspace_version(home)
    result = _resolve().execute(_context(_event("0" * 32 + ".dir", 1, "older"), _event(version, 2, "newer")))
    assert result["dataset_version"] == version
    assert result["asset_event"]["source"] == "cohort_ingest/newer"


def test_resolve__superseded_event_version_skips_the_run(home):
    from airflow.sdk.exceptions import AirflowSkipException

    stale = "f" * 32 + ".dir"
    with pytest.raises(AirflowSkipException, match=f"triggered for dataset version {stale}.*superseded"):
        _resolve().execute(_context(_event(stale, 3)))


def test_resolve__bad_run_conf_fails_the_task_once_naming_the_key(home):
    """A misspelled key in the run conf: AirflowFailException (no retries), before DVC pushes anything."""
    from airflow.sdk.exceptions import AirflowFailException

    context = {**_context(), "params": {"features": {"top_kk": 5}, "reason": "a run-conf key that is no section"}}
    with pytest.raises(AirflowFailException, match=r"^invalid params: run conf: features\.top_kk: unknown key "
                                                   r"\(did you mean top_k\?\)$"):
        _resolve().execute(context)


def test_resolve__run_conf_sections_merge_over_params_yaml(home):
    """The run's params are params.yaml deep-merged with the conf's sections; other conf keys are left out."""
    result = _resolve().execute({**_context(), "params": {"train": {"cv_folds": 5}, "reason": "drift"}})
    assert result["params"]["train"]["cv_folds"] == 5 and "reason" not in result["params"]
    assert result["params"]["train"]["models"] and result["params"]["study"]["targets"]


def test_promote__bad_params_fail_the_task_once(home):
    from airflow.sdk.exceptions import AirflowFailException
    from genoflow_plugins.operators import PromoteChampionOperator

    task = PromoteChampionOperator(task_id="promote_champion", run_key="k", params_json='{"train": {"cv_folds": "x"}}')
    with pytest.raises(AirflowFailException, match=r"^cannot promote: params_json: train\.cv_folds: expected an int"):
        task.execute({})


@pytest.mark.parametrize(("conf", "expected"), [
    ({"ingest": {"mode": "merge"}}, r"^invalid params: run conf: ingest\.mode: must be 'replace' or 'append'"),
    ({"ingest": {"landing_dir": "data/incoming/none"}}, r"^invalid cohort: .*data/incoming/none"),
    # Paths from run conf stay in the project (decision 0019).
    ({"ingest": {"landing_dir": "../elsewhere"}}, r"^invalid params: run conf: ingest\.landing_dir: '\.\./elsewhere' "
                                                   r"has a '\.\.' component"),
    ({"ingest": {"target": "/etc/genoflow"}}, r"^invalid cohort: params: ingest\.target: '/etc/genoflow' is "
                                               r"/etc/genoflow, outside /"),
])
def test_ingest__bad_conf_or_cohort_fails_the_task_once(home, conf, expected):
    from airflow.sdk.exceptions import AirflowFailException
    from genoflow_plugins.operators import IngestCohortOperator

    with pytest.raises(AirflowFailException, match=expected):
        IngestCohortOperator(task_id="ingest_cohort").execute({"params": {**conf, "reason": "drift"}})
