"""One patient's genotypes from an uploaded single-sample VCF (plain, gzip or bgzip).

Decoded with the pipeline's own parser (`genoflow.io.vcf`), so a VCF means the same thing to the
API as to preprocess: multi-allelic records split per ALT, REF/ALT upper-cased, no-calls -1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from genoflow.errors import InputError, InputTooLarge
from genoflow.genotypes import DOSAGE_DTYPE, rows_per_block, variant_label
from genoflow.io.vcf import iter_vcf_lines, parse_vcf_header, parse_vcf_records
from genoflow.serving.errors import InputProblem

__all__ = ["VcfCaps", "genotypes_from_vcf"]

# Lines parsed per block: the project's block rule for one sample (~4 bytes a call), and a byte
# budget, since a line can be long (INFO) and the parser's temporaries grow with the text.
CHUNK_ROWS = rows_per_block(1, bytes_per_value=4)
CHUNK_BYTES = 8 << 20

# InputTooLarge.limit -> the setting that sets it (named in the 413, so an operator knows the knob).
SETTING_OF_LIMIT = {"max_bytes": "GENOFLOW_SERVING_MAX_VCF_BYTES", "max_line_bytes": "GENOFLOW_SERVING_MAX_LINE_BYTES",
                    "max_header_lines": "GENOFLOW_SERVING_MAX_HEADER_LINES"}


@dataclass(frozen=True)
class VcfCaps:
    """What one upload may cost (`ServingSettings`' ``max_vcf_bytes``, ``max_line_bytes``,
    ``max_header_lines``, ``max_vcf_records``)."""

    max_bytes: int
    max_line_bytes: int
    max_header_lines: int
    max_records: int

    @classmethod
    def of(cls, settings) -> VcfCaps:
        return cls(settings.max_vcf_bytes, settings.max_line_bytes, settings.max_header_lines,
                   settings.max_vcf_records)


def genotypes_from_vcf(stream: BinaryIO, source: str, *, keep: frozenset[str] | None, caps: VcfCaps) -> dict[str, int]:
    """Dosages by feature column (``v_<contig>_<pos>_<ref>_<alt>``) of a single-sample VCF.

    Parameters
    ----------
    stream : BinaryIO
        The uploaded file (plain, gzip or bgzip), read once, streamed.
    source : str
        Its name, for messages.
    keep : frozenset of str or None
        Only these columns are returned (the model's variants); None returns every record.
    caps : VcfCaps
        Decompressed bytes, line length, header lines and records allowed; past any of them the
        file is refused (413) having held at most one line and one block of lines.

    Raises
    ------
    InputProblem
        413 naming the cap exceeded and its setting; 422 with the parser's message (file, line,
        problem) for a malformed VCF, a multi-sample VCF, or a variant listed twice.
    """
    try:
        return _genotypes(stream, source, keep, caps)
    except InputTooLarge as error:
        setting = SETTING_OF_LIMIT.get(error.limit, error.limit)
        hint = "; send only the variants the model uses (GET /models lists them)" if error.limit == "max_bytes" else ""
        raise InputProblem([f"{error} ({setting}){hint}"], status=413) from None
    except InputError as error:
        raise InputProblem([str(error)]) from None


def _genotypes(stream: BinaryIO, source: str, keep: frozenset[str] | None, caps: VcfCaps) -> dict[str, int]:
    lines = iter_vcf_lines(stream, source, max_line_bytes=caps.max_line_bytes, max_bytes=caps.max_bytes)
    header = parse_vcf_header(lines, source, max_lines=caps.max_header_lines)
    if header.n_samples != 1:
        raise InputError(source, f"expected a single-sample VCF, found {header.n_samples} samples",
                         line=header.n_header_lines)
    out: dict[str, int] = {}
    first, n_records = header.n_header_lines + 1, 0
    for chunk in _chunks(lines):
        n_records += len(chunk)
        if n_records > caps.max_records:
            raise InputProblem([f"{source}: more than {caps.max_records} VCF records "
                                "(GENOFLOW_SERVING_MAX_VCF_RECORDS); send only the variants the model uses "
                                "(GET /models lists them)"], status=413)
        table = parse_vcf_records(chunk, n_samples=1, source=source, first_line_number=first)
        first += len(chunk)
        _collect(table.to_pydict(), source, keep, out)
    return out


def _chunks(lines: Iterator[str]) -> Iterator[list[str]]:
    """Consecutive lines in blocks of at most `CHUNK_ROWS` lines and about `CHUNK_BYTES` characters."""
    chunk, size = [], 0
    for line in lines:
        chunk.append(line)
        size += len(line)
        if len(chunk) >= CHUNK_ROWS or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _collect(columns: dict, source: str, keep: frozenset[str] | None, out: dict[str, int]) -> None:
    dosages = np.frombuffer(b"".join(columns["dosages"]), dtype=DOSAGE_DTYPE)
    for contig, pos, ref, alt, dosage in zip(columns["contig"], columns["pos"], columns["ref"],
                                             columns["alt"], dosages.tolist(), strict=True):
        label = variant_label(contig, pos, ref, alt)
        if keep is not None and label not in keep:
            continue
        if label in out:
            raise InputError(source, f"variant {contig}:{pos}:{ref}:{alt} appears more than once")
        out[label] = dosage
