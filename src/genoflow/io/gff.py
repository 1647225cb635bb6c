"""GFF3 gene features and a vectorised position-to-gene lookup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, TextIO
from urllib.parse import unquote

import numpy as np

from genoflow.errors import InputError
from genoflow.io._streams import LineCounter, open_text
from genoflow.io.fasta import resolve_contig

__all__ = ["Gene", "GeneIndex", "read_genes"]

_N_COLUMNS = 9


@dataclass(frozen=True)
class Gene:
    """One GFF3 ``gene`` feature: 1-based inclusive ``start``..``end`` on ``seqid``."""

    seqid: str
    start: int
    end: int
    id: str
    name: str


@dataclass(frozen=True)
class _ContigGenes:
    """Genes of one contig as elementary segments.

    ``bounds`` (int64, sorted, shape (m,)) are the points where the set of covering genes
    changes; segment ``i`` is ``[bounds[i], bounds[i + 1])`` and ``gene[i]`` (int64) is the
    index of the first gene (in file order) covering it, or -1.
    """

    bounds: np.ndarray
    gene: np.ndarray


class GeneIndex:
    """Gene intervals, queryable by position with `annotate`.

    Parameters
    ----------
    genes : sequence of Gene
        In file order; for overlapping genes, the earlier one wins.
    """

    def __init__(self, genes: Sequence[Gene]):
        self.genes: list[Gene] = list(genes)
        self._names = np.array([g.name for g in self.genes] + [""], dtype=object)  # [-1] is ""
        by_contig: dict[str, list[int]] = {}
        for index, gene in enumerate(self.genes):
            by_contig.setdefault(gene.seqid, []).append(index)
        self._contigs = {seqid: self._segments(indices) for seqid, indices in by_contig.items()}

    def __len__(self) -> int:
        return len(self.genes)

    def _segments(self, indices: list[int]) -> _ContigGenes:
        starts = np.array([self.genes[i].start for i in indices], dtype=np.int64)
        ends = np.array([self.genes[i].end for i in indices], dtype=np.int64)
        bounds = np.unique(np.concatenate((starts, ends + 1)))
        gene = np.full(len(bounds), -1, dtype=np.int64)
        # Paint the segments of each gene, last gene first, so the first gene in file order wins.
        lo = np.searchsorted(bounds, starts)
        hi = np.searchsorted(bounds, ends + 1)
        for k in range(len(indices) - 1, -1, -1):
            gene[lo[k] : hi[k]] = indices[k]
        return _ContigGenes(bounds=bounds, gene=gene)

    def annotate(self, contig: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Name of the gene containing each position, or ``""`` when intergenic.

        Parameters
        ----------
        contig : numpy.ndarray of str or object, shape (n,)
            Contig names (``chr22`` and ``22`` are reconciled, see `resolve_contig`); a contig
            with no genes is intergenic throughout.
        pos : numpy.ndarray of int, shape (n,)
            1-based positions.

        Returns
        -------
        numpy.ndarray of object (str), shape (n,)
            The first gene (in file order) whose ``start <= pos <= end``, else ``""``.
        """
        contig = np.asarray(contig).astype(str)
        pos = np.asarray(pos, dtype=np.int64)
        gene = np.full(len(pos), -1, dtype=np.int64)
        names, inverse = np.unique(contig, return_inverse=True)
        for k, name in enumerate(names):
            found = resolve_contig(str(name), self._contigs)
            if found is None:
                continue
            rows = np.flatnonzero(inverse == k)
            segments = self._contigs[found]
            segment = np.searchsorted(segments.bounds, pos[rows], side="right") - 1
            gene[rows] = np.where(segment >= 0, segments.gene[np.maximum(segment, 0)], -1)
        return self._names[gene]


def read_genes(stream: BinaryIO | TextIO, *, source: str) -> GeneIndex:
    """Read the ``gene`` features of a (plain or gzip) GFF3 file.

    Parameters
    ----------
    stream : BinaryIO or TextIO
        The GFF3 content. Comment lines and everything after ``##FASTA`` are skipped.
    source : str
        Name of the file, for error messages.

    Returns
    -------
    GeneIndex
        The genes; each gene's name is its ``Name`` attribute, else its ``ID``, else
        ``seqid:start-end``.

    Raises
    ------
    InputError
        With the line number, for a feature line without 9 tab-separated columns, a start or
        end that is not a positive integer, or start after end; without a line, for a file with
        no gene feature.
    """
    genes = []
    for number, raw in enumerate(LineCounter(open_text(stream, source), source), start=1):
        line = raw.rstrip("\r\n")
        if line.startswith("##FASTA"):
            break
        if not line.strip() or line.startswith("#"):
            continue
        gene = _parse_feature(line, source, number)
        if gene is not None:
            genes.append(gene)
    if not genes:
        raise InputError(source, "no 'gene' features in the GFF3 file")
    return GeneIndex(genes)


def _parse_feature(line: str, source: str, number: int) -> Gene | None:
    """Validate one feature line; return it if it is a gene."""
    columns = line.split("\t")
    if len(columns) != _N_COLUMNS:
        hint = " (are the columns separated by spaces instead of tabs?)" if len(columns) == 1 else ""
        raise InputError(source, f"expected 9 tab-separated columns, found {len(columns)}{hint}", line=number)
    seqid, _source, kind, start_text, end_text, _score, _strand, _phase, attributes = columns
    start = _coordinate(start_text, "start", source, number)
    end = _coordinate(end_text, "end", source, number)
    if start > end:
        raise InputError(source, f"start {start} is after end {end}", line=number)
    if kind != "gene":
        return None
    fields = _attributes(attributes)
    gene_id = fields.get("ID", "")
    name = fields.get("Name") or gene_id or f"{seqid}:{start}-{end}"
    return Gene(seqid=seqid, start=start, end=end, id=gene_id, name=name)


def _coordinate(text: str, column: str, source: str, number: int) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InputError(source, f"{column} {text!r} is not a positive integer", line=number)
    return int(text)


def _attributes(text: str) -> dict[str, str]:
    """GFF3 column 9: ``key=value`` pairs separated by ``;``, values percent-decoded."""
    fields = {}
    for pair in text.split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep:
            fields[unquote(key)] = unquote(value)
    return fields
