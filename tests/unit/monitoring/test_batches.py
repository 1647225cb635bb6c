"""Incoming batches: same sites as the reference cohort, reference files untouched, shifted batches drift."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from genoflow.monitoring.drift import allele_frequency_shift, hudson_fst
from genoflow.simulate import make_cohort_batches, make_demo_cohort

REFERENCE = dict(n_patients=120, sequence_length=300_000, seed=11, reads_per_patient=8, read_length=60,
                 target_length=600)
BATCH = dict(n_reference=120, sequence_length=300_000, seed=11, reads_per_patient=8, read_length=60,
             target_length=600, n_new=80)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _vcf(path: Path):
    samples, sites, dosages = None, [], []
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith("#CHROM"):
                samples = line.rstrip("\n").split("\t")[9:]
            elif not line.startswith("#"):
                fields = line.rstrip("\n").split("\t")
                sites.append((fields[0], int(fields[1]), fields[3], fields[4]))
                dosages.append([-1 if gt[0] == "." else int(gt[0]) + int(gt[2]) for gt in fields[9:]])
    return samples, sites, np.array(dosages)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("batches")
    make_demo_cohort(root, **REFERENCE)
    before = _digest(root / "raw"), _digest(root / "truth")
    summaries = {
        "unshifted": make_cohort_batches(root, **BATCH, shifted=False),
        # a strongly drifted founder population so one 300 kb region shows it reliably
        "shifted": make_cohort_batches(root, **BATCH, shifted=True, diverged_size=50, split_generations=20),
    }
    return root, before, summaries


def test_reference_files_untouched(root):
    folder, before, _ = root
    assert _digest(folder / "raw") == before[0]
    assert {k: v for k, v in _digest(folder / "truth").items() if not k.startswith("incoming")} == before[1]


def test_layout_sites_and_samples(root):
    folder, _, summaries = root
    _, ref_sites, _ = _vcf(folder / "raw" / "cohort.vcf.gz")
    for name, summary in summaries.items():
        batch = folder / "incoming" / name
        assert summary["paths"]["vcf"] == f"incoming/{name}/cohort.vcf.gz"
        samples, sites, dosages = _vcf(batch / "cohort.vcf.gz")
        assert sites == ref_sites  # same contig, positions, REF, ALT
        assert samples == [f"B{name.upper()}{i:05d}" for i in range(1, 81)]
        assert dosages.shape == (len(ref_sites), 80) and set(np.unique(dosages)) <= {-1, 0, 1, 2}
        assert sorted(p.name for p in (batch / "patient_data").iterdir()) == samples
        for pid in samples[:3]:
            rows = list(csv.DictReader((batch / "patient_data" / pid / "clinical_data.csv").open()))
            assert rows[0]["patient_id"] == pid and rows[0]["sex"] in ("F", "M")
            assert rows[0]["disease_status"] in ("0", "1") and 18 <= int(rows[0]["age"]) <= 90
            assert (batch / "patient_data" / pid / "genome_sequence.fastq.gz").stat().st_size > 0
        truth = json.loads((folder / summary["paths"]["truth"]).read_text())
        assert truth["shifted"] is (name == "shifted") and truth["reference"]["seed"] == 11
    assert not list(folder.glob(".batch-tmp*"))


def test_shifted_batch_drifts_and_unshifted_does_not(root):
    folder, _, summaries = root
    _, _, ref = _vcf(folder / "raw" / "cohort.vcf.gz")
    fst = {}
    for name in summaries:
        _, _, new = _vcf(folder / "incoming" / name / "cohort.vcf.gz")
        ref_called, new_called = ref >= 0, new >= 0
        shift = allele_frequency_shift(np.where(ref_called, ref, 0).sum(1), 2 * ref_called.sum(1),
                                       np.where(new_called, new, 0).sum(1), 2 * new_called.sum(1))
        fst[name] = hudson_fst(shift["af_ref"], 2 * ref_called.sum(1), shift["af_new"], 2 * new_called.sum(1))
    assert abs(fst["unshifted"]) < 0.01
    assert fst["shifted"] > 0.03 > fst["unshifted"]
    assert summaries["shifted"]["expected_drift_f"] == pytest.approx(1 - (1 - 1 / 100) ** 20)
    assert summaries["unshifted"]["expected_drift_f"] == 0.0


def test_same_arguments_same_bytes(root, tmp_path):
    folder, _, _ = root
    again = make_cohort_batches(tmp_path, **BATCH, shifted=False)
    assert again["n_variants"] > 100
    assert _digest(tmp_path / "incoming" / "unshifted") == _digest(folder / "incoming" / "unshifted")


def test_reference_made_with_other_arguments_is_refused(root):
    folder, _, _ = root
    with pytest.raises(ValueError, match="not those of this simulation"):
        make_cohort_batches(folder, **{**BATCH, "seed": 12}, batch="wrong")
    assert not (folder / "incoming" / "wrong").exists()


def test_labels_follow_the_reference_liability_model(root):
    """The re-run reference phenotypes are the ones make_demo_cohort wrote (same streams, same order)."""
    from genoflow.simulate.cohort import _clinical, _phenotypes, _rngs, _simulate_variants

    folder, _, _ = root
    var = _simulate_variants(REFERENCE["n_patients"], REFERENCE["sequence_length"], REFERENCE["seed"])
    rngs = _rngs(REFERENCE["seed"])
    age, male = _clinical(REFERENCE["n_patients"], rngs["clinical"])
    params = {"n_causal": 20, "heritability": 0.5, "prevalence": 0.3}
    disease, _ = _phenotypes(var, age, male, params, rngs)
    written = [int(next(csv.DictReader(p.open()))["disease_status"])
               for p in sorted((folder / "raw" / "patient_data").glob("*/clinical_data.csv"))]
    assert written == disease.status.tolist()


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch must be"):
        make_cohort_batches("/nonexistent", batch="../x")
    with pytest.raises(ValueError, match="n_new"):
        make_cohort_batches("/nonexistent", n_new=0)
