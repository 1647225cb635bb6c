"""Ingest a newly landed cohort: validate it fast, put it in place as the raw cohort, version it.

A cohort lands as a folder laid out like the raw cohort (``data/raw``): the VCF, the reference
FASTA + GFF3 (both optional) and one folder per patient with its clinical CSV (and FASTQ), or the
cohort phenotype table(s) of ``study:`` (decision 0011), at the paths the ``preprocess:`` and
``study:`` params name relative to the raw folder. A batch may leave out the reference
(``reference_genome/``): it then reuses the current raw cohort's, and is checked against it.
In ``replace`` mode the landed cohort becomes the raw cohort; in ``append`` mode its patients
join the current ones (same sites, same reference: the VCF gets the batch's sample columns, see
:mod:`genoflow.io.vcf_append`), which is how a drifted batch becomes training data.

:func:`validate_cohort` runs the preprocess validations without Spark: required files, the VCF
header, VCF samples against the phenotypes (every clinical CSV or the phenotype table parsed, the study's
columns typed and checked), every record's
contig and REF against the FASTA, the first ``full_check_records`` records fully decoded
(genotypes included), and the GFF3. Genotype decoding of the remaining records and the FASTQ
read QC stay with the preprocess job. :func:`ingest_cohort` then swaps the cohort in by rename,
``dvc add`` + ``dvc push`` it and commits the ``.dvc`` pointer to git; any failure after the
swap puts the previous cohort and pointer back. Invalid input raises before anything moves.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from genoflow.errors import GenoflowError, InputError

__all__ = ["CohortFiles", "cohort_layout", "locate_cohort", "validate_cohort", "ingest_cohort", "batch_landing"]

_LAYOUT_KEYS = ("vcf", "reference_fasta", "annotations_gff", "patient_dir")
_STUDY_KEYS = ("phenotypes", "covariates_file")  # study: the cohort phenotype tables (decision 0011)
_REFERENCE_KEYS = ("reference_fasta", "annotations_gff")
_REF_CHUNK = 50_000  # VCF records contig/REF-checked per vectorised block
MODES = ("replace", "append")


@dataclass(frozen=True)
class CohortFiles:
    """Where each part of one cohort is (local paths)."""

    vcf: Path | None = None  # None (preprocess.vcf: null) or absent: a cohort of reads (decision 0016)
    reference_fasta: Path | None = None  # None, or an absent file: no REF check (decision 0011)
    annotations_gff: Path | None = None
    patient_dir: Path | None = None  # required without a phenotype table
    phenotypes: Path | None = None  # study.phenotypes: one table for the cohort instead of per-patient CSVs
    covariates_file: Path | None = None


def cohort_layout(params: dict, target: str = "data/raw") -> dict[str, str]:
    """Each part's path inside a cohort folder, from the ``preprocess:`` params.

    Those params are relative to the storage root (``raw/cohort.vcf.gz``); the cohort folder is
    the target's last component (``raw``), so its parts are the paths below that prefix.
    """
    prefix = PurePosixPath(target).name
    layout = {}
    study = params.get("study") or {}
    named = {**{k: params["preprocess"].get(k) for k in _LAYOUT_KEYS}, **{k: study.get(k) for k in _STUDY_KEYS}}
    for key, value in named.items():
        if not value:  # an optional input switched off
            continue
        path = PurePosixPath(value)
        if len(path.parts) < 2 or path.parts[0] != prefix:
            section = "study" if key in _STUDY_KEYS else "preprocess"
            raise GenoflowError(f"{section}.{key} = {str(path)!r} is not under {prefix}/: the ingested "
                                f"cohort replaces {target}, so the pipeline must read it from there")
        layout[key] = str(path.relative_to(prefix))
    return layout


def batch_landing(storage_root: str, cohort_vcf: str, patient_dir: str, params: dict,
                  target: str = "data/raw") -> str:
    """The local folder holding a monitored batch (``monitor.cohort_vcf`` + ``monitor.patient_dir``), to ingest it.

    The batch must be laid out as a cohort folder (``<folder>/cohort.vcf.gz`` and
    ``<folder>/patient_data``, the names of the raw cohort) on a ``file://`` storage root: DVC
    versions a local workspace, and copying a batch out of HDFS first is not done here.
    """
    from urllib.parse import urlparse

    from genoflow.storage.paths import confined_path

    layout = cohort_layout(params, target)
    vcf, patients = PurePosixPath(cohort_vcf), PurePosixPath(patient_dir)
    folder = vcf.parent
    if vcf != folder / layout["vcf"] or patients != folder / layout["patient_dir"]:
        raise GenoflowError(f"the batch ({cohort_vcf}, {patient_dir}) is not laid out as a cohort folder "
                            f"(<folder>/{layout['vcf']}, <folder>/{layout['patient_dir']}), so it cannot be ingested")
    root = urlparse(storage_root)
    if root.scheme != "file":
        raise GenoflowError(f"the batch is on {storage_root}: cohort_ingest takes a local folder (copy the batch "
                            "into the project, then trigger cohort_ingest with ingest.landing_dir)")
    return str(confined_path(root.path, "monitor.cohort_vcf", folder))


def locate_cohort(landing: Path, layout: dict[str, str], fallback: Path | None = None) -> CohortFiles:
    """The landed cohort's files; reference files it lacks come from ``fallback`` (the current cohort)."""
    found = {}
    for key, relative in layout.items():
        path = landing / relative
        if not path.exists() and key in _REFERENCE_KEYS and fallback is not None and (fallback / relative).is_file():
            path = fallback / relative
        found[key] = path
    return CohortFiles(**found)


def validate_cohort(files: CohortFiles, full_check_records: int = 2000, study=None,
                    id_column: str = "patient_id", *, check_study: bool = True, genotype_input: str = "auto") -> dict:
    """Validate a cohort without Spark (the checks of the module docstring).

    Returns
    -------
    dict
        ``n_samples``, ``n_variants`` (VCF records), ``n_records_fully_decoded``, ``contigs``,
        ``n_genes``, ``n_patients_with_reads``.

    Raises
    ------
    InputError
        Naming the file, and the line or record where there is one, for the first problem found.

    ``study`` (a :class:`genoflow.study.StudySettings`) types the study's columns as preprocess will
    and, with ``check_study``, runs the study checks (an appended batch is checked once merged);
    ``id_column`` keys a CSV/TSV phenotype table. ``genotype_input`` is ``preprocess.input``: a cohort of
    reads (``reads``, or ``auto`` with FASTQs and no VCF) is checked for a reference and readable FASTQs in
    place of the VCF.
    """
    from genoflow.io.reference import open_reference
    from genoflow.io.vcf import iter_vcf_lines, parse_vcf_header
    from genoflow.pipeline.preprocess import check_sample_sets
    from genoflow.storage.ranged import RangedFile
    from genoflow.study import build_study

    if genotype_input == "reads" or (genotype_input == "auto" and not _is_file(files.vcf) and _reads_folders(files)):
        return _validate_reads_cohort(files, study, id_column, check_study=check_study)
    _check_present(files)
    vcf = str(files.vcf)
    with open(files.vcf, "rb") as stream:
        lines = iter_vcf_lines(stream, vcf)
        header = parse_vcf_header(lines, vcf)
        tables, with_reads = _study_tables(files, id_column)
        check_sample_sets(header.samples, tables[0].frame.index, vcf, tables[0].source,
                          per_patient=files.phenotypes is None)
        if study is not None:
            build_study(tables, study, list(header.samples), check=check_study)
        reference = None
        if _is_file(files.reference_fasta):
            # By its index; without a .fai, indexed in memory by streaming it (the landing folder is input).
            reference = open_reference(RangedFile(str(files.reference_fasta)))
            _check_header_contigs(header, reference, vcf)
        n_records, n_decoded = _check_records(lines, header, reference, vcf, full_check_records)
    return {"n_samples": header.n_samples, "n_variants": n_records, "n_records_fully_decoded": n_decoded,
            "contigs": sorted(reference) if reference is not None else sorted(header.contigs),
            "n_genes": _count_genes(files), "n_patients_with_reads": with_reads}


def _count_genes(files: CohortFiles) -> int:
    """Genes of the annotations (parsed in full: a bad line is found here, not in preprocess); 0 without."""
    from genoflow.io.gff import read_genes

    if not _is_file(files.annotations_gff):
        return 0
    with open(files.annotations_gff, "rb") as gff:
        return len(read_genes(gff, source=str(files.annotations_gff)))


def _is_file(path: Path | None) -> bool:
    return path is not None and path.is_file()


def _study_tables(files: CohortFiles, id_column: str) -> tuple[list, int]:
    """The phenotype table(s) as preprocess reads them, and how many patient folders have reads."""
    from genoflow.io.clinical import clinical_table
    from genoflow.io.phenotypes import read_phenotype_table
    from genoflow.pipeline.preprocess import CLINICAL_FILE
    from genoflow.reads.inputs import folder_has_reads

    if files.phenotypes is None:
        clinical, with_reads = _read_clinical(files.patient_dir)
        return [clinical_table(clinical, str(files.patient_dir), file_name=CLINICAL_FILE)], with_reads
    tables = []
    for path in (files.phenotypes, files.covariates_file):
        if path is not None:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as err:
                raise InputError(str(path), f"not UTF-8 text ({err})") from None
            tables.append(read_phenotype_table(text, source=str(path), id_column=id_column))
    folders = files.patient_dir.iterdir() if files.patient_dir is not None and files.patient_dir.is_dir() else []
    return tables, sum(folder_has_reads(folder) for folder in folders)


def _reads_folders(files: CohortFiles) -> list[Path]:
    """The patient folders holding reads (a cohort of reads comes without a VCF; decision 0016)."""
    from genoflow.reads.inputs import folder_has_reads

    if files.patient_dir is None or not files.patient_dir.is_dir():
        return []
    return sorted(folder for folder in files.patient_dir.iterdir() if folder.is_dir() and folder_has_reads(folder))


_CHECKED_READS = 1000  # records of each FASTQ read at ingest; the align step reads them all


def _validate_reads_cohort(files: CohortFiles, study, id_column: str, *, check_study: bool) -> dict:
    """A cohort of reads: its patients' phenotypes, a reference to align to and each FASTQ's first records."""
    from itertools import islice

    from genoflow.io.fastq import iter_fastq_records
    from genoflow.io.reference import open_reference
    from genoflow.pipeline.preprocess import check_sample_sets
    from genoflow.reads.fastq_input import READ_FILES
    from genoflow.storage.ranged import RangedFile
    from genoflow.study import build_study

    if not _is_file(files.reference_fasta):
        raise InputError(str(files.reference_fasta), "a cohort of reads needs its reference to align to "
                         "(preprocess.reference_fasta), and it is missing")
    reference = open_reference(RangedFile(str(files.reference_fasta)))
    folders = _reads_folders(files)
    patients = [folder.name for folder in folders]
    tables, _ = _study_tables(files, id_column)
    check_sample_sets(patients, tables[0].frame.index, str(files.patient_dir), tables[0].source,
                      per_patient=files.phenotypes is None)
    if study is not None:
        build_study(tables, study, patients, check=check_study)
    for folder in folders:
        for fastq in (folder / name for name in READ_FILES if (folder / name).is_file()):
            with open(fastq, "rb") as stream:
                for _ in islice(iter_fastq_records(stream, str(fastq)), _CHECKED_READS):
                    pass
    return {"n_samples": len(patients), "n_variants": 0, "n_records_fully_decoded": 0, "contigs": sorted(reference),
            "n_genes": _count_genes(files), "n_patients_with_reads": len(patients)}


def _check_present(files: CohortFiles) -> None:
    if not _is_file(files.vcf):
        raise InputError(str(files.vcf or "preprocess.vcf: null"), "required file is missing from the cohort "
                         "(preprocess.vcf)")
    for key in _STUDY_KEYS:
        path = getattr(files, key)
        if path is not None and not path.is_file():
            raise InputError(str(path), f"required file is missing from the cohort (study.{key})")
    if files.phenotypes is None and (files.patient_dir is None or not files.patient_dir.is_dir()):
        raise InputError(str(files.patient_dir), "required folder is missing from the cohort (preprocess.patient_dir)")


def _read_clinical(patient_dir: Path) -> tuple[dict[str, dict], int]:
    """Every patient folder's validated clinical row, and how many folders have reads."""
    from genoflow.pipeline.preprocess import CLINICAL_FILE, parse_patient_clinical
    from genoflow.reads.inputs import folder_has_reads

    clinical, with_reads = {}, 0
    for folder in sorted(p for p in patient_dir.iterdir() if p.is_dir()):
        csv = folder / CLINICAL_FILE
        if not csv.is_file():
            raise InputError(str(folder), f"patient folder without {CLINICAL_FILE}")
        row = parse_patient_clinical(str(csv), csv.read_bytes())
        clinical[row["patient_id"]] = row
        with_reads += folder_has_reads(folder)
    if not clinical:
        raise InputError(str(patient_dir), f"no patient folders with {CLINICAL_FILE}: the cohort is empty")
    return clinical, with_reads


def _check_header_contigs(header, reference, vcf: str) -> None:
    """Each ``##contig`` is in the reference, with the reference's length when it states one."""
    from genoflow.io.fasta import resolve_contig

    # The meta lines are the file's first lines, in order, so a ##contig's index is its line number.
    contig_lines = [n for n, meta in enumerate(header.meta, start=1) if meta.startswith("##contig=")]
    for line, (name, length) in zip(contig_lines, header.contigs.items(), strict=False):
        found = resolve_contig(name, reference)
        if found is None:
            raise InputError(vcf, f"##contig {name!r} is not in the reference FASTA (its contigs: "
                             f"{', '.join(list(reference)[:10])})", line=line)
        if length is not None and length != reference.length(found):
            raise InputError(vcf, f"##contig {name!r} has length {length} but the reference's {found!r} has "
                             f"{reference.length(found)}: another genome build?", line=line)


def _check_records(lines: Iterator[str], header, reference, vcf: str,
                   full_check_records: int) -> tuple[int, int]:
    """Contig and REF of every record against the reference; the first records fully decoded."""
    from genoflow.io.vcf import parse_vcf_records

    first_line = header.n_header_lines + 1
    head: list[str] = []
    block: list[tuple[str, str, str, int]] = []
    n_records = 0
    for number, line in enumerate(lines, start=first_line):
        if not line:
            continue
        n_records += 1
        if len(head) < full_check_records:
            head.append(line)
            if len(head) == full_check_records:
                parse_vcf_records(head, n_samples=header.n_samples, source=vcf, first_line_number=first_line)
        fields = line.split("\t", 4)
        if len(fields) < 5:
            raise InputError(vcf, f"expected at least 10 tab-separated columns, found {len(fields)}", line=number)
        block.append((fields[0], fields[1], fields[3], number))
        if len(block) >= _REF_CHUNK:
            _check_ref_block(block, reference, vcf)
            block = []
    if 0 < len(head) < full_check_records:
        parse_vcf_records(head, n_samples=header.n_samples, source=vcf, first_line_number=first_line)
    if block:
        _check_ref_block(block, reference, vcf)
    if n_records == 0:
        raise InputError(vcf, "no variant records after the header")
    return n_records, len(head)


def _check_ref_block(block: list[tuple[str, str, str, int]], reference, vcf: str) -> None:
    from genoflow.io.fasta import check_ref_alleles

    contig, pos_text, ref, numbers = zip(*block, strict=True)
    for text, number in zip(pos_text, numbers, strict=True):
        if not (text.isascii() and text.isdigit() and int(text) > 0):
            raise InputError(vcf, f"POS {text!r} is not a positive integer", line=number)
    if reference is None:  # no FASTA (decision 0011): nothing to check REF against
        return
    check_ref_alleles(reference, np.asarray(contig, dtype=object), np.asarray(pos_text, dtype=np.int64),
                      np.asarray(ref, dtype=object), source=vcf, line_numbers=np.asarray(numbers))


# --- putting the cohort in place ----------------------------------------------------------------


def ingest_cohort(home: str | os.PathLike, landing: str | os.PathLike, params: dict, *, target: str = "data/raw",
                  mode: str = "replace", remote: str | None = None, commit: bool = True,
                  full_check_records: int = 2000) -> dict:
    """Validate the cohort at ``landing``, make it ``target``, ``dvc add`` + ``dvc push`` it, commit the pointer.

    Parameters
    ----------
    home : path
        The project (a DVC repository; a git repository too when ``commit``).
    landing : path
        The landed cohort folder (relative paths are relative to ``home``). It is copied, not moved.
        It and ``target`` must lie inside ``home`` (:func:`genoflow.storage.paths.confined_path`).
    params : dict
        The pipeline params (their ``preprocess:`` paths give the cohort layout).
    target : str
        The DVC-tracked raw cohort, relative to ``home``.
    mode : str
        ``replace``: the landed cohort becomes ``target``. ``append``: its patients are added to
        the current cohort's (same sites and reference).
    remote : str, optional
        DVC remote to push to (default: the repository's default remote).
    commit : bool
        Commit ``<target>.dvc`` (and the ``.gitignore`` DVC keeps next to it) to git.

    Returns
    -------
    dict
        ``dataset_version`` (the DVC hash), ``previous_version``, ``changed``, ``git_commit`` (the
        commit holding the pointer, None without ``commit``), ``remote``, ``remote_url``, ``target``,
        ``landing``, ``mode``, ``n_samples_added``, ``reference_from`` and the :func:`validate_cohort`
        summary of the resulting cohort.

    Raises
    ------
    InputError
        The cohort is invalid: nothing was moved, versioned, pushed or committed.
    ParamsError
        ``landing`` or ``target`` is outside ``home`` (an InputError too: not retried).
    """
    from genoflow.storage.paths import confined_path
    from genoflow.study import StudySettings
    from genoflow.versioning import dvc_remote, dvc_track, dvc_version, git_commit_paths

    home = Path(home).resolve()
    landing = confined_path(home, "ingest.landing_dir", landing).resolve()
    raw = confined_path(home, "ingest.target", target)
    _check_request(home, landing, raw, mode, commit)
    remote_name, remote_url = dvc_remote(home, remote)
    layout = cohort_layout(params, target)
    files = locate_cohort(landing, layout, fallback=raw if raw.is_dir() else None)
    if mode == "append":
        _check_same_reference(files, raw, layout)
    study, id_column = StudySettings.from_params(params), params["study"].get("id_column", "patient_id")
    genotype_input = params["preprocess"].get("input", "auto")
    if mode == "append" and not _is_file(files.vcf):
        raise InputError(str(files.vcf), "appending patients needs their VCF (a cohort of reads is ingested whole)")
    summary = validate_cohort(files, full_check_records, study, id_column, check_study=mode != "append",
                              genotype_input=genotype_input)
    added = summary["n_samples"]

    pointer = home / f"{target}.dvc"
    previous = dvc_version(home, target) if pointer.exists() else None
    kept = {path: path.read_bytes() for path in (pointer, raw.parent / ".gitignore") if path.exists()}
    stage = raw.parent / f".{raw.name}.ingest-{uuid.uuid4().hex[:8]}"
    aside = raw.parent / f".{raw.name}.previous-{uuid.uuid4().hex[:8]}"
    swapped = False
    try:
        if mode == "append":
            _stage_append(files, raw, layout, stage)
            summary = validate_cohort(locate_cohort(stage, layout), full_check_records, study, id_column,  # merged
                                      genotype_input="vcf")
        else:
            _stage(landing, files, raw, stage)
        if raw.exists():
            os.replace(raw, aside)
        os.replace(stage, raw)
        swapped = True
        version = dvc_track(home, target, push=True, remote=remote_name)
        sha = None
        if commit:
            sha = git_commit_paths(home, [pointer, raw.parent / ".gitignore"],
                                   f"cohort_ingest: {target} at {version} ({summary['n_samples']} samples, "
                                   f"{summary['n_variants']} variants; {mode} from {landing})")
    except BaseException:
        _restore(raw, aside, swapped, kept, pointer)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    shutil.rmtree(aside, ignore_errors=True)
    return {"dataset_version": version, "previous_version": previous, "changed": version != previous,
            "git_commit": sha, "remote": remote_name, "remote_url": remote_url, "target": target,
            "landing": str(landing), "mode": mode, "n_samples_added": added,
            "reference_from": _reference_origin(files, landing), **summary}


def _check_request(home: Path, landing: Path, raw: Path, mode: str, commit: bool) -> None:
    """Refuse what cannot work before anything is read, moved or pushed."""
    from genoflow.versioning import git_toplevel

    if mode not in MODES:
        raise GenoflowError(f"ingest mode must be one of {', '.join(MODES)}, got {mode!r}")
    if landing == raw.resolve():
        raise GenoflowError(f"the landing folder {landing} is the raw cohort itself: land new cohorts elsewhere")
    if not landing.is_dir():
        raise InputError(str(landing), "no cohort has landed here (not a folder)")
    if mode == "append" and not raw.is_dir():
        raise GenoflowError(f"append mode adds patients to the current cohort, but there is none at {raw}")
    if commit:
        git_toplevel(home)  # the pointer could not be committed: fail now, not after the swap


def _stage(landing: Path, files: CohortFiles, raw: Path, stage: Path) -> None:
    """A full copy of the landed cohort next to ``raw`` (same filesystem, so it can be renamed in)."""
    raw.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(landing, stage)
    for key in _REFERENCE_KEYS:
        source = getattr(files, key)
        if _is_file(source) and not source.is_relative_to(landing):  # reused from the current cohort
            copy = stage / source.relative_to(raw)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)


def _stage_append(files: CohortFiles, raw: Path, layout: dict[str, str], stage: Path) -> None:
    """The current cohort plus the batch's patients, next to ``raw``."""
    from genoflow.io.vcf_append import append_vcf_samples

    patients = stage / layout["patient_dir"]
    shutil.copytree(raw, stage)
    for folder in sorted(p for p in files.patient_dir.iterdir() if p.is_dir()):
        if (patients / folder.name).exists():
            raise InputError(str(folder), f"patient {folder.name!r} is already in the current cohort ({raw})")
        shutil.copytree(folder, patients / folder.name)
    vcf = stage / layout["vcf"]
    merged = vcf.with_name(f".{vcf.name}.appending")
    append_vcf_samples(raw / layout["vcf"], files.vcf, merged)
    os.replace(merged, vcf)


def _check_same_reference(files: CohortFiles, raw: Path, layout: dict[str, str]) -> None:
    """Appended patients must be on the current cohort's reference (a batch may also leave it out)."""
    for key in _REFERENCE_KEYS:
        if key not in layout:
            continue
        ours, theirs = raw / layout[key], getattr(files, key)
        if theirs != ours and theirs.is_file() and theirs.read_bytes() != ours.read_bytes():
            raise InputError(str(theirs), f"differs from the current cohort's {ours.name}: appending patients "
                             "needs the same reference (ingest it in replace mode instead)")


def _restore(raw: Path, aside: Path, swapped: bool, kept: dict[Path, bytes], pointer: Path) -> None:
    """Put the previous cohort and its pointer back after a failed ingest."""
    if swapped:
        shutil.rmtree(raw, ignore_errors=True)
    if aside.exists():
        os.replace(aside, raw)
    for path, content in kept.items():
        path.write_bytes(content)
    if pointer not in kept:
        pointer.unlink(missing_ok=True)


def _reference_origin(files: CohortFiles, landing: Path) -> str:
    if not _is_file(files.reference_fasta):
        return "none"
    return "landing" if files.reference_fasta.is_relative_to(landing) else "previous cohort"

