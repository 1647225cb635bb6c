"""Paths from params and run conf stay inside the project or the storage root (decision 0019)."""

from __future__ import annotations

import pytest

from genoflow.config import load_params
from genoflow.errors import InputError, ParamsError
from genoflow.ingest import batch_landing, ingest_cohort
from genoflow.storage.paths import confined_path
from tests.unit.conftest import PARAMS, REPO

PATH_KEYS = [("ingest", "landing_dir"), ("ingest", "target"), ("monitor", "cohort_vcf"), ("monitor", "patient_dir"),
             ("preprocess", "vcf"), ("preprocess", "reference_fasta"), ("preprocess", "annotations_gff"),
             ("preprocess", "patient_dir"), ("preprocess", "patient_vcf"), ("study", "phenotypes"),
             ("study", "covariates_file")]


@pytest.mark.parametrize(("section", "key"), PATH_KEYS)
def test_load_params__a_run_conf_path_with_dotdot_is_refused_naming_the_key(section, key):
    with pytest.raises(ParamsError, match=rf"^run conf: {section}\.{key}: 'data/\.\./\.\./x' has a '\.\.' component"):
        load_params(REPO / "params.yaml", {section: {key: "data/../../x"}})


def test_confined_path__inside_relative_or_absolute(tmp_path):
    assert confined_path(tmp_path, "ingest.landing_dir", "data/incoming/b7") == tmp_path / "data/incoming/b7"
    assert confined_path(tmp_path, "ingest.landing_dir", str(tmp_path / "data/x")) == tmp_path / "data/x"
    assert confined_path(tmp_path, "ingest.landing_dir", "data/./b/../c") == tmp_path / "data/c"


@pytest.mark.parametrize("value", ["../elsewhere", "/etc", "data/../../elsewhere"])
def test_confined_path__outside_names_key_value_and_root(tmp_path, value):
    root = tmp_path / "project"
    with pytest.raises(ParamsError) as caught:
        confined_path(root, "ingest.landing_dir", value, source="run conf")
    message = str(caught.value)
    assert message.startswith(f"run conf: ingest.landing_dir: {value!r} is ")
    assert f"outside {root}" in message and isinstance(caught.value, InputError)  # InputError: not retried


@pytest.mark.parametrize(("landing", "target"), [("../outside", "data/raw"), ("data/incoming/new", "../../moved"),
                                                 ("data/incoming/new", "/tmp/genoflow-elsewhere")])
def test_ingest_cohort__a_landing_or_target_outside_the_project_moves_nothing(tmp_path, landing, target):
    home, outside = tmp_path / "project", tmp_path / "outside"
    for folder in (home / "data" / "incoming" / "new", outside):
        folder.mkdir(parents=True)
        (folder / "cohort.vcf.gz").write_bytes(b"landed")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    key = "ingest.landing_dir" if landing.startswith("..") else "ingest.target"
    with pytest.raises(ParamsError, match=rf"^params: {key}: .* outside {home}"):
        ingest_cohort(home, landing, PARAMS, target=target, commit=False)

    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_batch_landing__an_absolute_batch_outside_the_storage_root_is_refused(tmp_path):
    root = (tmp_path / "data").as_uri()
    assert batch_landing(root, "incoming/b7/cohort.vcf.gz", "incoming/b7/patient_data", PARAMS) == \
        str(tmp_path / "data" / "incoming" / "b7")
    with pytest.raises(ParamsError, match=r"monitor\.cohort_vcf: '/elsewhere/b7' is /elsewhere/b7, outside"):
        batch_landing(root, "/elsewhere/b7/cohort.vcf.gz", "/elsewhere/b7/patient_data", PARAMS)


def test_storage_uri__dotdot_cannot_leave_the_storage_root(spark, tmp_path):
    from genoflow.storage import HadoopStorage

    storage = HadoopStorage(spark, tmp_path.as_uri())
    assert storage.uri("/incoming/b7", "cohort.vcf.gz") == f"{tmp_path.as_uri()}/incoming/b7/cohort.vcf.gz"
    with pytest.raises(InputError, match=rf"^incoming/\.\./\.\./x: has a '\.\.' component and would leave the "
                                         rf"storage root {tmp_path.as_uri()}"):
        storage.uri("incoming/../../x")
