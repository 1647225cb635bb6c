"""Reference genome FASTA reading and the check that VCF REF alleles match it."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from typing import BinaryIO, TextIO

import numpy as np
from Bio.SeqIO.FastaIO import SimpleFastaParser

from genoflow.errors import InputError
from genoflow.io._streams import LineCounter, open_text

__all__ = ["check_ref_alleles", "read_reference", "resolve_contig"]

_NOT_A_BASE = re.compile(r"[^A-Z]")  # IUPAC codes are letters; anything else is a typo
_MAX_LISTED = 25  # contig names listed in an "unknown contig" message


class _HeaderLines(LineCounter):
    """Counts lines and remembers where each '>' header and the first text line are."""

    def __init__(self, handle: TextIO, source: str):
        super().__init__(handle, source)
        self.header_lines: list[int] = []
        self.first_text: tuple[int, str] | None = None

    def readline(self) -> str:
        line = super().readline()
        if line.startswith(">"):
            self.header_lines.append(self.n_lines)
        if self.first_text is None and line.strip():
            self.first_text = (self.n_lines, line.rstrip("\r\n"))
        return line


def read_reference(stream: BinaryIO | TextIO, *, source: str) -> dict[str, str]:
    """Read all sequences of a (plain or gzip) FASTA file, upper-cased.

    Parameters
    ----------
    stream : BinaryIO or TextIO
        The FASTA content.
    source : str
        Name of the file, for error messages.

    Returns
    -------
    dict of str to str
        Contig name (the first word of the ``>`` line) to its sequence, in file order.

    Raises
    ------
    InputError
        Text before the first ``>`` line, an empty name, a duplicate name, an empty sequence,
        a character that is not a letter, or no sequence at all.
    """
    handle = _HeaderLines(open_text(stream, source), source)
    reference: dict[str, str] = {}
    for index, (title, sequence) in enumerate(SimpleFastaParser(handle)):
        line = handle.header_lines[index]
        if index == 0:
            _check_starts_with_header(handle, source)
        name = _check_name(reference, title, sequence, source, line)
        sequence = sequence.upper()
        bad = _NOT_A_BASE.search(sequence)
        if bad:
            char, at = bad.group(), bad.start() + 1
            problem = f"sequence {name!r} has the invalid character {char!r} at position {at}"
            raise InputError(source, problem, line=line, record=name)
        reference[name] = sequence
    if not reference:
        _check_starts_with_header(handle, source)
        raise InputError(source, "no sequences: the FASTA file has no '>' record")
    return reference


def _check_starts_with_header(handle: _HeaderLines, source: str) -> None:
    # Biopython silently skips text before the first '>': a wrong file should not pass.
    if handle.first_text is not None and not handle.first_text[1].startswith(">"):
        line, text = handle.first_text
        raise InputError(source, f"expected a '>' header line, found {text[:60]!r}", line=line)


def _check_name(reference: dict[str, str], title: str, sequence: str, source: str, line: int) -> str:
    """The record's name (first word of the title), checked to be new and non-empty."""
    name = title.split(None, 1)[0] if title.strip() else ""
    if not name:
        raise InputError(source, "empty sequence name after '>'", line=line)
    if name in reference:
        raise InputError(source, f"duplicate sequence name {name!r}", line=line, record=name)
    if not sequence:
        raise InputError(source, f"sequence {name!r} is empty", line=line, record=name)
    return name


def resolve_contig(name: str, reference_names: Collection[str]) -> str | None:
    """The name under which contig ``name`` appears in the reference, or None.

    Reconciles the UCSC and Ensembl spellings: ``chr22`` matches ``22`` and vice versa (and
    ``chrM`` matches ``MT``), but only when the exact name is absent.

    Parameters
    ----------
    name : str
        A contig name as the VCF (or GFF) spells it.
    reference_names : collection of str
        The reference's contig names (e.g. the keys of `read_reference`'s result).
    """
    if name in reference_names:
        return name
    if name in ("chrM", "MT"):
        other = "MT" if name == "chrM" else "chrM"
    else:
        other = name[3:] if name.startswith("chr") else f"chr{name}"
    return other if other in reference_names else None


@functools.lru_cache(maxsize=4)
def _as_bytes(sequence: str) -> np.ndarray:
    # Chunks of one contig arrive over and over on an executor: convert its sequence once.
    # (str caches its hash, and dict lookup tries identity first, so hits are cheap.)
    return np.frombuffer(sequence.encode("latin-1", "replace"), dtype=np.uint8)


def check_ref_alleles(
    reference: dict[str, str],
    contig: np.ndarray,
    pos: np.ndarray,
    ref: np.ndarray,
    *,
    source: str,
    line_numbers: np.ndarray | None = None,
) -> None:
    """Check that each REF allele equals the reference sequence at its position.

    Vectorised per contig: all REF bases of a contig are compared with one gather.

    Parameters
    ----------
    reference : dict of str to str
        Upper-case sequences, from `read_reference`.
    contig : numpy.ndarray of str or object, shape (n,)
        Contig names; ``chr``-prefixed or not (see `resolve_contig`).
    pos : numpy.ndarray of int, shape (n,)
        1-based positions of the first REF base.
    ref : numpy.ndarray of str or object, shape (n,)
        REF alleles (one or more bases; compared case-insensitively).
    source : str
        The VCF the records come from, for error messages.
    line_numbers : numpy.ndarray of int, shape (n,), optional
        Line of each record in ``source``.

    Raises
    ------
    InputError
        For the first record (in input order) whose contig is not in the reference (listing the
        reference's contigs), whose REF runs past the contig's end, or whose REF differs from
        the reference.
    """
    contig = np.asarray(contig).astype(str)
    pos = np.asarray(pos, dtype=np.int64)
    ref = np.asarray(ref, dtype=object)
    problems = []
    names, inverse = np.unique(contig, return_inverse=True)
    for k, name in enumerate(names):
        rows = np.flatnonzero(inverse == k)
        problem = _check_contig(reference, str(name), rows, pos, ref)
        if problem is not None:
            problems.append(problem)
    if problems:
        row, text = min(problems)
        line = None if line_numbers is None else int(line_numbers[row])
        raise InputError(source, text, line=line, record=f"{contig[row]}:{pos[row]}")


def _check_contig(reference, name: str, rows: np.ndarray, pos: np.ndarray, ref: np.ndarray):
    """``(row, problem)`` for the first bad record among ``rows`` (all on contig ``name``)."""
    found = resolve_contig(name, reference)
    if found is None:
        listed = ", ".join(list(reference)[:_MAX_LISTED]) + (", ..." if len(reference) > _MAX_LISTED else "")
        return int(rows[0]), f"contig {name!r} is not in the reference FASTA (its contigs: {listed})"
    sequence = _as_bytes(reference[found])
    alleles = [str(a).upper() for a in ref[rows]]
    lengths = np.fromiter(map(len, alleles), dtype=np.int64, count=len(alleles))
    starts = pos[rows] - 1
    outside = (starts < 0) | (lengths < 1) | (starts + lengths > len(sequence))
    if outside.any():
        i = int(outside.argmax())
        return int(rows[i]), (
            f"REF {alleles[i]!r} at position {starts[i] + 1} is outside contig {found!r} "
            f"(length {len(sequence)})"
        )
    offsets = np.cumsum(lengths) - lengths
    index = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
    observed = np.frombuffer("".join(alleles).encode("latin-1", "replace"), dtype=np.uint8)
    differs = np.add.reduceat(sequence[index] != observed, offsets) > 0
    if not differs.any():
        return None
    i = int(differs.argmax())
    expected = reference[found][starts[i] : starts[i] + lengths[i]]
    where = f"{found}:{starts[i] + 1}"
    return int(rows[i]), f"REF is {alleles[i]!r} but the reference FASTA has {expected!r} at {where}"
