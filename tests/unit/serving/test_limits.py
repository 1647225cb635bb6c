"""Upload caps, range checks, scoring slots, in process (the real server: tests/integration/test_api_bombs.py)."""

from __future__ import annotations

import asyncio
import gzip
import io
import threading

import pytest

from genoflow.errors import InputTooLarge
from genoflow.io.vcf import iter_vcf_lines, parse_vcf_header
from genoflow.serving import create_app
from genoflow.serving.errors import Busy
from genoflow.serving.limits import ScoringSlots
from genoflow.serving.sources import StaticSource
from tests.unit.serving.conftest import AUTH, GOOD, TestClient, served, served_with_ranges, settings

HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP\n"
RECORD = "chr22\t{pos}\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n"
LONG_RECORD = b"chr22\t5\t.\tA\tG\t.\tPASS\tX=" + b"1" * 150 + b"\tGT\t0/1\n"  # under the line cap


@pytest.fixture
def capped():
    caps = {"max_vcf_bytes": 20_000, "max_line_bytes": 200, "max_header_lines": 20, "max_vcf_records": 500}
    app = create_app(settings(targets=("disease_status",), **caps), source=StaticSource([served("disease_status")]))
    with TestClient(app) as c:
        yield c


def post_vcf(client, content: bytes):
    return client.post("/predict/vcf", headers=AUTH, data={"age": "61", "sex": "F"},
                       files={"vcf": ("bomb.vcf.gz", content)})


# --- io.vcf caps ----------------------------------------------------------------------------------


def test_iter_vcf_lines__a_line_at_the_cap_passes_one_byte_more_is_refused():
    at_cap = b"#" * 10 + b"\r\n" + b"#" * 11 + b"\n"
    lines = iter_vcf_lines(io.BytesIO(at_cap), "x.vcf", max_line_bytes=10)
    assert next(lines) == "#" * 10
    with pytest.raises(InputTooLarge, match=r"x.vcf, line 2: line longer than 10 bytes") as caught:
        next(lines)
    assert caught.value.limit == "max_line_bytes"


def test_iter_vcf_lines__decompressed_bytes_capped_gzip_or_plain():
    text = b"##x\n" * 1000
    for blob in (text, gzip.compress(text)):
        with pytest.raises(InputTooLarge, match="more than 2000 bytes of VCF text") as caught:
            list(iter_vcf_lines(io.BytesIO(blob), "x.vcf", max_bytes=2000))
        assert caught.value.limit == "max_bytes" and caught.value.line == 501
    assert len(list(iter_vcf_lines(io.BytesIO(text), "x.vcf", max_bytes=4000))) == 1000  # exactly the cap


def test_parse_vcf_header__header_lines_capped_only_when_asked():
    lines = ["##x"] * 30 + [HEADER.splitlines()[1]]
    assert parse_vcf_header(lines, "x.vcf").n_header_lines == 31  # the pipeline's default: no cap
    with pytest.raises(InputTooLarge, match=r"line 21: more than 20 header lines before '#CHROM'"):
        parse_vcf_header(lines, "x.vcf", max_lines=20)


# --- the API's answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("content, setting", [
    (gzip.compress(HEADER.encode() + LONG_RECORD * 100_000), "more than 20000 bytes of VCF text (after decompression) "
     "(GENOFLOW_SERVING_MAX_VCF_BYTES)"),
    (gzip.compress(b"##" * 1_000_000 + b"\n"), "line 1: line longer than 200 bytes (GENOFLOW_SERVING_MAX_LINE_BYTES)"),
    (gzip.compress(b"##\n" * 1_000_000), "line 21: more than 20 header lines before '#CHROM' "
     "(GENOFLOW_SERVING_MAX_HEADER_LINES)"),
    ((HEADER + "".join(RECORD.format(pos=p) for p in range(1, 502))).encode(),
     "more than 500 VCF records (GENOFLOW_SERVING_MAX_VCF_RECORDS)"),
])
def test_vcf__each_cap_is_a_413_naming_it(capped, content, setting):
    response = post_vcf(capped, content)
    assert response.status_code == 413, response.text
    assert setting in response.json()["detail"]
    assert response.json()["detail"].startswith("bomb.vcf.gz")
    assert capped.post("/predict", headers=AUTH, json=GOOD).status_code == 200  # still serving


def test_vcf__under_every_cap_is_scored(capped):
    content = (HEADER + "".join(RECORD.format(pos=p) for p in range(1, 500))).encode()
    assert post_vcf(capped, gzip.compress(content)).status_code == 200


# --- range checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("covariates, message", [
    ({"gc_fraction": 7}, "covariates.gc_fraction: 7 is out of range: allowed [0, 1] (a fraction)"),
    ({"mean_phred": 500}, "covariates.mean_phred: 500 is out of range: allowed [0, 93] (Phred+33"),
    ({"mean_phred": -1.5}, "covariates.mean_phred: -1.5 is out of range"),
    ({"age": 131}, "covariates.age: 131 is out of range: allowed [0, 130] (an age in years)"),
    ({"bmi": 61}, "covariates.bmi: 61 is out of range: allowed [15, 45] (the training range [20, 40] widened by "
     "25% of its span each side)"),
])
def test_predict__out_of_range_inputs_are_422_naming_field_value_and_range(ranged, covariates, message):
    response = ranged.post("/predict", headers=AUTH, json={
        **GOOD, "covariates": {"age": 61, "sex": "F", "bmi": 30, **covariates}})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_predict__values_inside_the_ranges_are_scored(ranged):
    for covariates in ({"gc_fraction": 0.0, "mean_phred": 93, "bmi": 15, "age": 0},
                       {"gc_fraction": 1, "mean_phred": 0, "bmi": 45, "age": 130}):
        response = ranged.post("/predict", headers=AUTH, json={**GOOD, "covariates": {"sex": "F", **covariates}})
        assert response.status_code == 200, response.text


def test_predict__a_spec_without_a_training_range_checks_by_meaning_only():
    model = served()
    assert set(model.ranges) == {"age", "mean_phred"}  # bmi-like covariates of old specs: any finite number


@pytest.fixture
def ranged():
    source = StaticSource([served_with_ranges()])
    with TestClient(create_app(settings(targets=("disease_status",)), source=source)) as client:
        yield client


# --- scoring slots --------------------------------------------------------------------------------


def test_scoring_slots__past_running_plus_queued_is_503_at_once():
    release, started = threading.Event(), threading.Event()

    def work():
        started.set()
        release.wait()
        return "done"

    async def scenario():
        slots = ScoringSlots(max_concurrent=1, max_queued=1)
        running = asyncio.ensure_future(slots.run(work))
        waiting = asyncio.ensure_future(slots.run(lambda: "queued"))
        await asyncio.to_thread(started.wait)
        with pytest.raises(Busy) as caught:
            await slots.run(lambda: "refused")
        assert not waiting.done()  # queued behind the running one, not refused
        release.set()
        assert (await running, await waiting) == ("done", "queued")
        assert slots.admitted == 0
        return caught.value

    busy = asyncio.run(scenario())
    assert busy.status == 503 and busy.headers == {"Retry-After": "1"}
    assert "GENOFLOW_SERVING_MAX_CONCURRENT" in busy.problems[0]


# --- settings -------------------------------------------------------------------------------------


def test_settings__every_cap_has_a_default_and_an_environment_override():
    from genoflow.serving import ServingSettings

    defaults = ServingSettings()
    assert (defaults.max_vcf_bytes, defaults.max_line_bytes, defaults.max_header_lines) == (64 << 20, 1 << 20, 10_000)
    env = {"GENOFLOW_SERVING_MAX_VCF_BYTES": "1000", "GENOFLOW_SERVING_MAX_LINE_BYTES": "100",
           "GENOFLOW_SERVING_MAX_HEADER_LINES": "50", "GENOFLOW_SERVING_MAX_VCF_RECORDS": "7",
           "GENOFLOW_SERVING_MAX_CONCURRENT": "2", "GENOFLOW_SERVING_MAX_QUEUED": "0"}
    s = ServingSettings.from_env(env)
    assert (s.max_vcf_bytes, s.max_line_bytes, s.max_header_lines, s.max_vcf_records, s.max_concurrent,
            s.max_queued) == (1000, 100, 50, 7, 2, 0)
    with pytest.raises(ValueError, match="GENOFLOW_SERVING_MAX_LINE_BYTES='1MB' is not a valid int"):
        ServingSettings.from_env({"GENOFLOW_SERVING_MAX_LINE_BYTES": "1MB"})
    with pytest.raises(ValueError, match="max_concurrent must be at least 1, got 0"):
        ServingSettings.from_env({"GENOFLOW_SERVING_MAX_CONCURRENT": "0"})
