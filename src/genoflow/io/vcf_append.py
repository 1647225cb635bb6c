"""Append the samples of one VCF to another VCF on the same sites (a new batch joins a cohort).

Like ``bcftools merge`` restricted to the case it is used for here: both files list the same
records in the same order (CHROM, POS, REF, ALT and FORMAT equal line by line), and the output
is the base file with the batch's sample columns added. INFO becomes ``.``: counts such as AC/AN
would describe only the base samples (genoflow computes its own allele frequencies).
"""

from __future__ import annotations

import os
from itertools import zip_longest

from genoflow.errors import InputError

__all__ = ["append_vcf_samples"]

_SITE = (0, 1, 3, 4, 8)  # CHROM, POS, REF, ALT, FORMAT
_SITE_NAMES = ("CHROM", "POS", "REF", "ALT", "FORMAT")


def append_vcf_samples(base: str | os.PathLike, batch: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write ``out`` (BGZF): ``base`` with the samples of ``batch`` appended to every record.

    Parameters
    ----------
    base, batch : path
        Plain, gzip or BGZF VCFs on the same sites, in the same order; sample ids must not repeat.
    out : path
        The merged VCF (BGZF, so it stays gzip-readable and tabix-indexable).

    Returns
    -------
    dict
        ``n_records``, ``n_samples`` (base + batch), ``n_batch_samples``.

    Raises
    ------
    InputError
        Naming the batch file and line: a sample already in ``base``, a record whose site or FORMAT
        differs from the base's record on that line, or a different number of records.
    """
    from Bio import bgzf

    from genoflow.io.vcf import iter_vcf_lines, parse_vcf_header

    base, batch = str(base), str(batch)
    with open(base, "rb") as base_stream, open(batch, "rb") as batch_stream, \
            bgzf.BgzfWriter(str(out), "wb") as writer:
        base_lines, batch_lines = iter_vcf_lines(base_stream, base), iter_vcf_lines(batch_stream, batch)
        base_header = parse_vcf_header(base_lines, base)
        batch_header = parse_vcf_header(batch_lines, batch)
        _check_new_samples(base_header.samples, batch_header.samples, batch, batch_header.n_header_lines)
        chrom_line = "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                                *base_header.samples, *batch_header.samples])
        writer.write(("\n".join([*base_header.meta, chrom_line]) + "\n").encode())
        n_records = 0
        records = zip_longest(_records(base_lines, base_header.n_header_lines + 1),
                              _records(batch_lines, batch_header.n_header_lines + 1))
        for base_record, batch_record in records:
            if base_record is None:
                raise InputError(batch, f"more records than {base}: appending samples needs the same sites",
                                 line=batch_record[0])
            if batch_record is None:
                raise InputError(batch, f"fewer records than {base} (which continues on its line {base_record[0]}): "
                                 "appending samples needs the same sites")
            (_, base_line), (batch_number, batch_line) = base_record, batch_record
            writer.write((_append(base_line, batch_line, batch, batch_number) + "\n").encode())
            n_records += 1
    n = len(base_header.samples) + len(batch_header.samples)
    return {"n_records": n_records, "n_samples": n, "n_batch_samples": len(batch_header.samples)}


def _records(lines, first_number: int):
    for number, line in enumerate(lines, start=first_number):
        if line:
            yield number, line


def _check_new_samples(base: list[str], batch: list[str], source: str, line: int) -> None:
    repeated = sorted(set(base) & set(batch))
    if repeated:
        raise InputError(source, f"{len(repeated)} sample(s) are already in the cohort: {', '.join(repeated[:5])}",
                         line=line, record=repeated[0])


def _append(base_line: str, batch_line: str, batch: str, number: int) -> str:
    base_fields = base_line.split("\t")
    batch_fields = batch_line.split("\t")
    for index, name in zip(_SITE, _SITE_NAMES, strict=True):
        ours = base_fields[index] if index < len(base_fields) else None
        theirs = batch_fields[index] if index < len(batch_fields) else None
        if ours != theirs:
            site = ":".join(base_fields[i] for i in (0, 1, 3, 4) if i < len(base_fields))
            raise InputError(batch, f"{name} {theirs!r} differs from the cohort's {ours!r} (site {site}): "
                             "appending samples needs the same sites in the same order", line=number)
    base_fields[7] = "."
    return "\t".join(base_fields + batch_fields[9:])

