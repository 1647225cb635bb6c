"""Contig names across spellings and the check that VCF REF alleles match the reference FASTA.

The reference itself is read by index (:class:`genoflow.io.reference.IndexedReference`): only the
bases at the records' positions are read.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from genoflow.errors import InputError
from genoflow.io.reference import IndexedReference

__all__ = ["check_ref_alleles", "resolve_contig"]

_MAX_LISTED = 25  # contig names listed in an "unknown contig" message


def resolve_contig(name: str, reference_names: Collection[str]) -> str | None:
    """The name under which contig ``name`` appears in the reference, or None.

    Reconciles the UCSC and Ensembl spellings: ``chr22`` matches ``22`` and vice versa (and
    ``chrM`` matches ``MT``), but only when the exact name is absent.

    Parameters
    ----------
    name : str
        A contig name as the VCF (or GFF) spells it.
    reference_names : collection of str
        The reference's contig names (an `IndexedReference` is one).
    """
    if name in reference_names:
        return name
    if name in ("chrM", "MT"):
        other = "MT" if name == "chrM" else "chrM"
    else:
        other = name[3:] if name.startswith("chr") else f"chr{name}"
    return other if other in reference_names else None


def check_ref_alleles(
    reference: IndexedReference,
    contig: np.ndarray,
    pos: np.ndarray,
    ref: np.ndarray,
    *,
    source: str,
    line_numbers: np.ndarray | None = None,
) -> None:
    """Check that each REF allele equals the reference sequence at its position.

    Vectorised per contig: the REF bases of a contig are read in a few byte ranges
    (`IndexedReference.bases`) and compared at once.

    Parameters
    ----------
    reference : IndexedReference
        The reference FASTA by its index (`genoflow.io.reference.open_reference`).
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
        For the first record (in input order) whose contig is not in the reference's index (naming
        the index and listing its contigs), whose REF runs past the contig's end, or whose REF
        differs from the reference.
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


def _check_contig(reference: IndexedReference, name: str, rows: np.ndarray, pos: np.ndarray, ref: np.ndarray):
    """``(row, problem)`` for the first bad record among ``rows`` (all on contig ``name``)."""
    found = resolve_contig(name, reference)
    if found is None:
        names = reference.names
        listed = ", ".join(names[:_MAX_LISTED]) + (", ..." if len(names) > _MAX_LISTED else "")
        return int(rows[0]), (f"contig {name!r} is not in the reference FASTA {reference.source} (its index "
                              f"{reference.index_source} lists: {listed})")
    length = reference.length(found)
    alleles = [str(a).upper() for a in ref[rows]]
    lengths = np.fromiter(map(len, alleles), dtype=np.int64, count=len(alleles))
    starts = pos[rows] - 1
    outside = (starts < 0) | (lengths < 1) | (starts + lengths > length)
    if outside.any():
        i = int(outside.argmax())
        return int(rows[i]), (
            f"REF {alleles[i]!r} at position {starts[i] + 1} is outside contig {found!r} (length {length})"
        )
    offsets = np.cumsum(lengths) - lengths
    index = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
    expected = reference.bases(found, index)
    observed = np.frombuffer("".join(alleles).encode("latin-1", "replace"), dtype=np.uint8)
    differs = np.add.reduceat(expected != observed, offsets) > 0
    if not differs.any():
        return None
    i = int(differs.argmax())
    bases = expected[offsets[i]:offsets[i] + lengths[i]].tobytes().decode("latin-1")
    where = f"{found}:{starts[i] + 1}"
    return int(rows[i]), f"REF is {alleles[i]!r} but the reference FASTA has {bases!r} at {where}"
