"""Whether a cohort's genotypes come from its VCF or from its patients' reads (``preprocess.input``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["resolve_input", "workspace_genotype_source", "folder_has_reads"]


def resolve_input(params: dict, *, exists: Callable[[str], bool], has_reads: Callable[[], bool]) -> str:
    """``"vcf"`` or ``"reads"``: the explicit ``preprocess.input``, or for ``auto`` what the cohort holds.

    ``auto`` is reads when the cohort VCF (``preprocess.vcf``, a name under the storage root) is absent and
    the patients' folders hold FASTQs, and vcf otherwise: a cohort with both keeps the genotypes its VCF
    states (set ``input: reads`` to call them, and check the VCF for sample swaps on the way).

    >>> resolve_input({"preprocess": {"input": "auto", "vcf": "raw/cohort.vcf.gz", "vcf_layout": "cohort"}},
    ...               exists=lambda name: False, has_reads=lambda: True)
    'reads'
    """
    p = params["preprocess"]
    if p.get("input", "auto") != "auto":
        return p["input"]
    if p.get("vcf_layout", "cohort") == "per_patient":
        return "vcf"
    return "reads" if not (p.get("vcf") and exists(p["vcf"])) and has_reads() else "vcf"


def workspace_genotype_source(storage_folder: str | Path, params: dict) -> str:
    """:func:`resolve_input` against a local folder that holds the storage root's names (the DVC workspace).

    For the training DAG, which skips the reads tasks of a VCF cohort without starting Spark.
    """
    root = Path(storage_folder)
    patient_dir = params["preprocess"].get("patient_dir")

    def has_reads() -> bool:
        folder = root / patient_dir if patient_dir else None
        return bool(folder and folder.is_dir() and any(folder_has_reads(patient) for patient in folder.iterdir()))

    return resolve_input(params, exists=lambda name: (root / name).exists(), has_reads=has_reads)


def folder_has_reads(patient_folder: Path) -> bool:
    """Whether a local patient folder holds a FASTQ (:data:`genoflow.reads.fastq_input.READ_FILES`)."""
    from genoflow.reads.fastq_input import READ_FILES

    return any((patient_folder / name).is_file() for name in READ_FILES)
