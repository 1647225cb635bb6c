"""One patient's genotypes from an uploaded single-sample VCF (plain, gzip or bgzip).

Decoded with the pipeline's own parser (`genoflow.io.vcf`), so a VCF means the same thing to the
API as to preprocess: multi-allelic records split per ALT, REF/ALT upper-cased, no-calls -1.
"""

from __future__ import annotations

import io
from itertools import islice

import numpy as np

from genoflow.errors import InputError
from genoflow.genotypes import DOSAGE_DTYPE, variant_label
from genoflow.io.vcf import iter_vcf_lines, parse_vcf_header, parse_vcf_records
from genoflow.serving.errors import InputProblem

__all__ = ["genotypes_from_vcf"]

CHUNK_LINES = 50_000  # lines parsed per block: bounds the parser's temporaries


def genotypes_from_vcf(data: bytes, source: str, *, keep: frozenset[str] | None, max_records: int) -> dict[str, int]:
    """Dosages by feature column (``v_<contig>_<pos>_<ref>_<alt>``) of a single-sample VCF.

    Parameters
    ----------
    data : bytes
        The uploaded file.
    source : str
        Its name, for messages.
    keep : frozenset of str or None
        Only these columns are returned (the model's variants); None returns every record.
    max_records : int
        Most data lines read; a bigger file is refused (status 413).

    Raises
    ------
    InputError
        The parser's message (file, line, problem) for a malformed VCF, or a multi-sample VCF, or
        a variant listed twice.
    InputProblem
        More than ``max_records`` data lines (status 413).
    """
    lines = iter_vcf_lines(io.BytesIO(data), source)
    header = parse_vcf_header(lines, source)
    if header.n_samples != 1:
        raise InputError(source, f"expected a single-sample VCF, found {header.n_samples} samples",
                         line=header.n_header_lines)
    out: dict[str, int] = {}
    first, n_records = header.n_header_lines + 1, 0
    while chunk := list(islice(lines, CHUNK_LINES)):
        n_records += len(chunk)
        if n_records > max_records:
            raise InputProblem([f"{source}: more than {max_records} VCF records; send only the variants "
                                "the model uses (GET /models lists them)"], status=413)
        table = parse_vcf_records(chunk, n_samples=1, source=source, first_line_number=first)
        first += len(chunk)
        columns = table.to_pydict()
        dosages = np.frombuffer(b"".join(columns["dosages"]), dtype=DOSAGE_DTYPE)
        for contig, pos, ref, alt, dosage in zip(columns["contig"], columns["pos"], columns["ref"],
                                                 columns["alt"], dosages.tolist(), strict=True):
            label = variant_label(contig, pos, ref, alt)
            if keep is not None and label not in keep:
                continue
            if label in out:
                raise InputError(source, f"variant {contig}:{pos}:{ref}:{alt} appears more than once")
            out[label] = dosage
    return out
