"""The model API under hostile uploads and heavy load: the real server process, its real memory.

uvicorn serves `create_app` on a free loopback port in its own process, with the serving settings'
default caps and an in-memory model with read-QC inputs (tests/unit/serving/conftest.py's
`served_with_ranges`: no registry is needed to be attacked). Each bomb must be refused with the
right status and a message naming the cap, and the server's peak resident memory (``VmHWM`` of
/proc/<pid>/status) may grow by at most `RSS_BOUND` over it. ``/health`` must answer while four
large batches are being scored. No wall-clock asserts: ordering is shown by the test's own events;
the latencies are printed for the record.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

from tests.services.api import answering

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KEY = "test-key-1"  # tests/unit/serving/conftest.py's
AUTH = {"X-API-Key": KEY}
MIB = 1 << 20
RSS_BOUND = 300 * MIB
HEADER = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP\n"

SERVER = """
import sys, uvicorn
from genoflow.serving import create_app
from genoflow.serving.sources import StaticSource
from tests.unit.serving.conftest import served_with_ranges, settings
app = create_app(settings(targets=("disease_status",)), source=StaticSource([served_with_ranges()]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(base URL, pid) of the server, started once for this module and stopped (its own process only) after."""

    port, log = _free_port(), tmp_path_factory.mktemp("bombs") / "api.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=REPO, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    with answering(process, url, lambda: log.read_text()[-4000:], route="/ready"):
        yield url, process.pid


def reset_peak_rss(pid: int) -> None:
    """Start ``VmHWM`` again from the current resident set (Linux >= 4.0), so each bomb is measured alone."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def gzip_of(block: bytes, repeats: int, head: bytes = b"") -> bytes:
    """gzip of ``head + block * repeats``, compressed as a stream (the test holds only the output)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [z.compress(head)] + [z.compress(block) for _ in range(repeats)]
    return b"".join([*parts, z.flush()])


def _long_records() -> bytes:
    """512 MiB of VCF text in ~2 MB of gzip: valid 1 KB records (under the line cap, few enough not to hit the
    record cap first), so only the decompressed-bytes cap can stop it."""
    line = b"chr22\t5\t.\tA\tG\t.\tPASS\tX=" + b"1" * 1000 + b"\tGT\t0/1\n"
    return gzip_of(line * 1000, 512 * MIB // (len(line) * 1000), HEADER)


BOMBS = {
    "gzip": (_long_records, "more than 67108864 bytes of VCF text (after decompression) "
                            "(GENOFLOW_SERVING_MAX_VCF_BYTES)"),
    "header-lines": (lambda: gzip_of(b"##\n" * 1_000_000, 12),
                     "line 10001: more than 10000 header lines before '#CHROM' (GENOFLOW_SERVING_MAX_HEADER_LINES)"),
    "long-line": (lambda: gzip_of(b"#" * MIB, 256, b"##"),
                  "line 1: line longer than 1048576 bytes (GENOFLOW_SERVING_MAX_LINE_BYTES)"),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_bomb__refused_413_naming_the_cap_with_bounded_memory(api, bomb):
    import httpx

    url, pid = api
    make, message = BOMBS[bomb]
    content = make()
    reset_peak_rss(pid)
    before = peak_rss(pid)
    response = httpx.post(f"{url}/predict/vcf", headers=AUTH, data={"age": "61", "sex": "F"},
                          files={"vcf": ("bomb.vcf.gz", content)}, timeout=120)
    after = peak_rss(pid)
    print(f"{bomb} bomb: {len(content)} bytes uploaded, peak RSS {before / MIB:.0f} -> {after / MIB:.0f} MiB")
    assert response.status_code == 413, response.text
    assert message in response.json()["detail"]
    assert after - before < RSS_BOUND, f"peak RSS grew {(after - before) / MIB:.0f} MiB under the {bomb} bomb"
    assert httpx.get(f"{url}/health").status_code == 200


@pytest.mark.parametrize("covariates, field", [({"gc_fraction": 7}, "covariates.gc_fraction: 7 is out of range"),
                                               ({"mean_phred": 500}, "covariates.mean_phred: 500 is out of range"),
                                               ({"age": -3}, "covariates.age: -3 is out of range")])
def test_out_of_range_covariates__422(api, covariates, field):
    import httpx

    url, _ = api
    body = {"covariates": {"age": 61, "sex": "F", "bmi": 25, **covariates}, "genotypes": {"chr22:1114906:C:G": 1}}
    response = httpx.post(f"{url}/predict", headers=AUTH, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def big_batch() -> bytes:
    """A ~3.6 MB /predict/batch body: 1,000 patients, each with 150 variants the model does not use."""
    genotypes = {f"chr1:{pos}:A:G": pos % 3 for pos in range(1000, 1150)}
    patients = [{"id": f"p{i}", "covariates": {"age": 40 + i % 30, "sex": "FM"[i % 2], "bmi": 25, "mean_phred": 35.5},
                 "genotypes": {**genotypes, "chr22:1114906:C:G": i % 3}} for i in range(1000)]
    return json.dumps({"ignore_unknown": True, "patients": patients}).encode()


def test_health__answers_while_four_large_batches_are_scored(api):
    import httpx

    url, pid = api
    body = big_batch()
    port = int(url.rsplit(":", 1)[1])
    sent = [threading.Event() for _ in range(4)]
    done: list[tuple[float, int]] = []

    def heavy(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.request("POST", "/predict/batch", body=body, headers={**AUTH, "Content-Type": "application/json"})
        sent[i].set()  # the whole body is written: the server has it to parse and score
        status = conn.getresponse().status
        done.append((time.monotonic(), status))
        conn.close()

    threads = [threading.Thread(target=heavy, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for event in sent:
        assert event.wait(timeout=120)
    health = []  # (sent, answered) of each /health while the batches are in flight
    with httpx.Client(base_url=url, timeout=60) as client:
        while len(done) < 4 and len(health) < 200:
            asked = time.monotonic()
            assert client.get("/health").status_code == 200
            health.append((asked, time.monotonic()))
    for t in threads:
        t.join(timeout=300)
    assert [status for _, status in done] == [200] * 4, done
    first_done = min(t for t, _ in done)
    answered_in_flight = [h for h in health if h[1] < first_done]
    latencies = sorted(end - start for start, end in health)
    print(f"batch body {len(body) / 1e6:.1f} MB x4; /health answered {len(answered_in_flight)} times before the "
          f"first batch finished; /health latency median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms over {len(latencies)} calls; batches took "
          f"{(max(t for t, _ in done) - health[0][0]):.1f} s")
    assert len(answered_in_flight) >= 3, "the event loop was held while the batches were scored"
