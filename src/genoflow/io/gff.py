"""Gene annotations (GFF3 or GTF, plain or gzip): a columnar gene table and a vectorised position-to-gene lookup.

Annotations arrive at full size (Ensembl/GENCODE: ~60k genes in ~3M lines, mostly exons, CDS and UTRs).
`read_genes` streams them in batches of lines, splits only the lines that can be genes, and keeps one row
per gene in columns; `GeneIndex` holds that table (Arrow) and per-contig elementary segments (numpy), so
the pickled index that Spark broadcasts to every Python worker stays a few MB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, TextIO
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa

from genoflow.errors import InputError
from genoflow.io._streams import DECOMPRESSION_ERRORS, open_text, truncation_problem
from genoflow.io.fasta import resolve_contig

__all__ = ["GENE_SCHEMA", "Gene", "GeneIndex", "read_genes"]

GENE_SCHEMA = pa.schema(
    [
        pa.field("seqid", pa.string(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),  # 1-based, inclusive
        pa.field("end", pa.int64(), nullable=False),  # inclusive
        pa.field("id", pa.string(), nullable=False),  # "" when the file gives none
        pa.field("name", pa.string(), nullable=False),
    ]
)

_GFF3, _GTF = "GFF3", "GTF"
# Column 3 of a gene line, with its tabs: a cheap test before splitting. Ensembl's GFF3 types its non-coding
# genes ncRNA_gene and pseudogene (Sequence Ontology terms under gene); GENCODE and GTFs say gene for all.
# FlyBase uses pseudogene for a transcript (it has a Parent gene): only top-level ones are genes.
_GENE_KINDS = frozenset({"gene", "ncRNA_gene", "pseudogene"})
_GENE_TOKEN = re.compile("\t(?:" + "|".join(sorted(_GENE_KINDS)) + ")\t")
_GTF_SPAN_KINDS = ("transcript", "exon")  # what a GTF without gene lines spans its genes with
_GTF_FILE = re.compile(r"\.gtf(\.gz)?$", re.IGNORECASE)
# One GTF attribute: a key (no '=', unlike GFF3's key=value), blanks, a quoted or bare value.
_GTF_PAIR = re.compile(r'\s*([^\s";=]+)\s+(?:"([^"]*)"|([^\s";]*))\s*;?')
_MAX_COORDINATE = 2**62  # fits the int64 columns with room for end + 1 (a huge one crashed pyarrow)
_CHUNK_CHARS = 1 << 20  # text is read ~1 MB at a time: C-speed scans, bounded memory


@dataclass(frozen=True)
class Gene:
    """One gene: 1-based inclusive ``start``..``end`` on ``seqid``."""

    seqid: str
    start: int
    end: int
    id: str
    name: str


@dataclass(frozen=True)
class _ContigGenes:
    """Genes of one contig as elementary segments.

    ``bounds`` (int64, sorted, shape (m,)) are the points where the set of covering genes
    changes; segment ``i`` is ``[bounds[i], bounds[i + 1])`` and ``gene[i]`` (int32) is the
    row of the first gene (in file order) covering it, or -1.
    """

    bounds: np.ndarray
    gene: np.ndarray


class GeneIndex:
    """A gene table, queryable by position with `annotate`.

    Parameters
    ----------
    table : pyarrow.Table
        One row per gene in file order, with the columns of `GENE_SCHEMA` (``seqid``, ``start``,
        ``end``, ``id``, ``name``); for overlapping genes, the earlier row wins.
    """

    def __init__(self, table: pa.Table):
        self._table = table.select(GENE_SCHEMA.names).cast(GENE_SCHEMA)
        self._contigs = _segments(self._table)
        self._lookup: np.ndarray | None = None

    @classmethod
    def from_columns(cls, seqid, start, end, id, name) -> GeneIndex:
        """Build from five equal-length sequences (str, int, int, str, str), in file order."""
        return cls(pa.table([seqid, start, end, id, name], schema=GENE_SCHEMA))

    def __len__(self) -> int:
        return self._table.num_rows

    def to_arrow(self) -> pa.Table:
        """The gene table (`GENE_SCHEMA`), one row per gene in file order, e.g. to write as Parquet."""
        return self._table

    @property
    def genes(self) -> list[Gene]:
        """The genes as `Gene` objects, in file order (built on each call: prefer `to_arrow`)."""
        return [Gene(**row) for row in self._table.to_pylist()]

    def __getstate__(self) -> dict:
        # What Spark broadcasts: Arrow buffers and numpy arrays, not the per-name Python objects.
        return {"table": self._table, "contigs": self._contigs}

    def __setstate__(self, state: dict) -> None:
        self._table, self._contigs, self._lookup = state["table"], state["contigs"], None

    def _names(self) -> np.ndarray:
        """Gene names as an object array with a trailing ``""`` for row -1 (intergenic), built once."""
        if self._lookup is None:
            names = self._table.column("name").to_numpy(zero_copy_only=False)
            self._lookup = np.append(names.astype(object), "")
        return self._lookup

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
        pos = np.asarray(pos, dtype=np.int64)
        gene = np.full(len(pos), -1, dtype=np.int64)
        codes, names = pd.factorize(np.asarray(contig, dtype=object))  # hashing: no sort of n strings
        for k, name in enumerate(names):
            found = resolve_contig(str(name), self._contigs)
            if found is None:
                continue
            rows = np.flatnonzero(codes == k) if len(names) > 1 else slice(None)
            segments = self._contigs[found]
            segment = np.searchsorted(segments.bounds, pos[rows], side="right") - 1
            gene[rows] = np.where(segment >= 0, segments.gene[np.maximum(segment, 0)], -1)
        return self._names()[gene]


def _segments(table: pa.Table) -> dict[str, _ContigGenes]:
    """Elementary segments of each contig's genes (see `_ContigGenes`)."""
    if table.num_rows == 0:
        return {}
    encoded = table.column("seqid").combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy()
    starts = table.column("start").to_numpy()
    ends = table.column("end").to_numpy()
    order = np.argsort(codes, kind="stable")  # rows grouped by contig, file order kept within
    cuts = np.cumsum(np.bincount(codes, minlength=len(encoded.dictionary)))[:-1]
    return {
        str(seqid): _paint(rows, starts[rows], ends[rows])
        for seqid, rows in zip(encoded.dictionary.to_pylist(), np.split(order, cuts), strict=True)
    }


def _paint(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> _ContigGenes:
    bounds = np.unique(np.concatenate((starts, ends + 1)))
    gene = np.full(len(bounds), -1, dtype=np.int32)
    lo = np.searchsorted(bounds, starts).tolist()
    hi = np.searchsorted(bounds, ends + 1).tolist()
    # Paint the segments of each gene, last gene first, so the first gene in file order wins.
    for k, row in zip(range(len(lo) - 1, -1, -1), rows[::-1].tolist(), strict=True):
        gene[lo[k] : hi[k]] = row
    return _ContigGenes(bounds=bounds, gene=gene)


def read_genes(stream: BinaryIO | TextIO, *, source: str) -> GeneIndex:
    """Read the genes of a (plain or gzip) GFF3 or GTF file, streaming.

    The format is GFF3 after a ``##gff-version 3`` pragma, else GTF when ``source`` ends in
    ``.gtf`` or ``.gtf.gz``, else whichever the first feature line's attributes look like
    (GTF ``key "value";`` or GFF3 ``key=value``).

    Parameters
    ----------
    stream : BinaryIO or TextIO
        The annotation. Comment lines and everything from ``##FASTA`` (or a first ``>`` line) on
        are skipped.
    source : str
        Name of the file, for error messages and format detection.

    Returns
    -------
    GeneIndex
        One row per ``gene`` feature, in file order. GFF3 names are the ``Name`` attribute, else
        ``gene_name``, else ``ID``; GTF names are ``gene_name``, else ``gene_id``; a gene with
        neither is named ``seqid:start-end``. A GTF without ``gene`` lines gets one gene per
        ``gene_id``, spanning its ``transcript`` and ``exon`` lines.

    Raises
    ------
    InputError
        With the line number, for a line that is neither a comment nor 9 tab-separated columns,
        and, on the lines that are read as genes, a start or end that is not a positive integer,
        start after end, a GTF line without ``gene_id`` or one gene_id on two contigs; without a
        line, for damaged gzip data or a file with no gene. Non-gene features are only checked
        for their column count: their coordinates are never used.
    """
    reader = _Reader(source)
    for first, text in _chunks(open_text(stream, source), source):
        if reader.read(text, first):
            break
    return reader.index()


def _chunks(handle: TextIO, source: str):
    """Yield (number of the first line, text) for successive ~1 MB chunks of whole lines of ``handle``."""
    first = 1
    while True:
        try:
            text = handle.read(_CHUNK_CHARS)
            if text and not text.endswith("\n"):
                text += handle.readline()
        except DECOMPRESSION_ERRORS as error:
            raise InputError(source, f"{truncation_problem(error)}, after line {first - 1}") from None
        except UnicodeDecodeError as error:
            raise InputError(source, f"the text is not valid after line {first - 1}: {error}") from None
        if not text:
            return
        yield first, text
        first += text.count("\n")


def _plain(text: str) -> bool:
    """True when every line of ``text`` is a 9-column feature or a tab-free comment, and none is ``##FASTA``.

    Counted over the whole chunk in C, so a chunk of Ensembl features needs no Python loop over its lines.
    A blank line or a sequence line (``>``...) has no tab and is no comment, so it fails the count.
    """
    n_lines = text.count("\n") + (not text.endswith("\n"))
    n_comments = text.count("\n#") + text.startswith("#")
    return text.count("\t") == 8 * (n_lines - n_comments) and not (n_comments and "##FASTA" in text)


class _Reader:
    """Genes of one file, gathered into columns as its chunks stream past."""

    def __init__(self, source: str):
        self.source = source
        self.format: str | None = None  # decided at the first feature line
        self.gff3_pragma = False
        # The substring a gene line contains, once lines without it can be skipped unsplit; None
        # until the format is known, and in a GTF until its first gene line (exons may span genes).
        self.token: re.Pattern | None = None
        self.columns: tuple[list, list, list, list, list] = ([], [], [], [], [])
        self.spans: dict[str, list] = {}  # GTF gene_id -> [seqid, start, end, name, line]

    def read(self, text: str, first: int) -> bool:
        """Take a chunk of whole lines, the first numbered ``first``; True at ``##FASTA`` (stop reading)."""
        if self.token is not None and _plain(text):
            self._read_genes_only(text, first)
            return False
        lines = text.split("\n")  # not splitlines: it would also split at \f, \x1c, ... and shift line numbers
        return self._read_lines(lines[:-1] if lines[-1] == "" else lines, first)

    def _read_genes_only(self, text: str, first: int) -> None:
        """Split only the lines that contain the gene token (all lines are known to be well-formed)."""
        number, counted = first, 0
        hit = self.token.search(text)
        while hit is not None:
            start = text.rfind("\n", 0, hit.start()) + 1
            end = text.find("\n", hit.start()) + 1 or len(text)
            number += text.count("\n", counted, start)
            counted = start
            if text[start] != "#":
                self._feature(text[start:end], number)
            hit = self.token.search(text, end)

    def _read_lines(self, lines: list[str], first: int) -> bool:
        """Line by line (comments, blank or malformed lines, GTF exons while no gene line was seen)."""
        for number, line in enumerate(lines, start=first):
            if line.count("\t") == 8 and line[0] != "#":
                if self.token is None or self.token.search(line):
                    self._feature(line, number)
            elif self._other(line, number):
                return True
        return False

    def _other(self, line: str, number: int) -> bool:
        """A comment, blank or malformed line; True where the sequences begin (``##FASTA`` or ``>``)."""
        if line.startswith(">"):  # sequences without the ##FASTA directive, as some files have
            return True
        if line.startswith("#"):
            if line.startswith("##FASTA"):
                return True
            if line.startswith("##gff-version"):
                words = line.split()  # "##gff-version 3" or "##gff-version 3.1.26"
                self.gff3_pragma = len(words) > 1 and words[1].split(".")[0] == "3"
            return False
        if not line.strip():
            return False
        n = line.count("\t") + 1
        hint = " (are the columns separated by spaces instead of tabs?)" if n == 1 else ""
        raise InputError(self.source, f"expected 9 tab-separated columns, found {n}{hint}", line=number)

    def _feature(self, line: str, number: int) -> None:
        seqid, _source, kind, start, end, _score, _strand, _phase, attributes = line.rstrip("\r\n").split("\t")
        if self.format is None:
            self._decide(attributes)
        if kind in _GENE_KINDS:
            start, end = self._span(start, end, number)
            if self.format == _GFF3:
                self._gff3_gene(seqid, start, end, attributes, top_level_only=kind != "gene")
            elif kind == "gene":  # GTFs (GENCODE, Ensembl) type every gene "gene"
                self._gtf_gene(seqid, start, end, attributes, number)
        elif self.format == _GTF and self.token is None and kind in _GTF_SPAN_KINDS:
            start, end = self._span(start, end, number)
            self._gtf_span(seqid, start, end, attributes, number)

    def _decide(self, attributes: str) -> None:
        if self.gff3_pragma:
            self.format = _GFF3
        elif _GTF_FILE.search(self.source) or _GTF_PAIR.match(attributes):
            self.format = _GTF
        else:
            self.format = _GFF3
        if self.format == _GFF3:
            self.token = _GENE_TOKEN

    def _span(self, start: str, end: str, number: int) -> tuple[int, int]:
        first, last = _coordinate(start, "start", self.source, number), _coordinate(end, "end", self.source, number)
        if first > last:
            raise InputError(self.source, f"start {first} is after end {last}", line=number)
        return first, last

    def _add(self, seqid: str, start: int, end: int, gene_id: str, name: str) -> None:
        row = (seqid, start, end, gene_id, name or f"{seqid}:{start}-{end}")
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)

    def _gff3_gene(self, seqid: str, start: int, end: int, attributes: str, *, top_level_only: bool) -> None:
        fields = _gff3_attributes(attributes)
        if top_level_only and "Parent" in fields:
            return
        gene_id = fields.get("ID", "")
        self._add(seqid, start, end, gene_id, fields.get("Name") or fields.get("gene_name") or gene_id)

    def _gtf_gene(self, seqid: str, start: int, end: int, attributes: str, number: int) -> None:
        fields = self._gtf_fields(attributes, number)
        self.token = _GENE_TOKEN  # the file has gene lines: split no more transcripts and exons
        self._add(seqid, start, end, fields["gene_id"], fields.get("gene_name") or fields["gene_id"])

    def _gtf_span(self, seqid: str, start: int, end: int, attributes: str, number: int) -> None:
        fields = self._gtf_fields(attributes, number)
        span = self.spans.get(fields["gene_id"])
        if span is None:
            self.spans[fields["gene_id"]] = [seqid, start, end, fields.get("gene_name", ""), number]
        elif span[0] != seqid:
            raise InputError(
                self.source,
                f"gene_id {fields['gene_id']!r} is on contig {seqid!r} here but on {span[0]!r} at line {span[4]}",
                line=number,
            )
        else:
            span[1], span[2] = min(span[1], start), max(span[2], end)

    def _gtf_fields(self, attributes: str, number: int) -> dict[str, str]:
        fields = _gtf_attributes(attributes)
        if not fields.get("gene_id"):
            raise InputError(self.source, "GTF line without a gene_id attribute", line=number)
        return fields

    def index(self) -> GeneIndex:
        if not self.columns[0] and self.spans:  # a GTF without gene lines
            for gene_id, (seqid, start, end, name, _line) in self.spans.items():
                self._add(seqid, start, end, gene_id, name or gene_id)
        if not self.columns[0]:
            raise InputError(self.source, f"no 'gene' features in the {self.format or 'GFF3/GTF'} file")
        return GeneIndex.from_columns(*self.columns)


def _coordinate(text: str, column: str, source: str, number: int) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= _MAX_COORDINATE:
        raise InputError(source, f"{column} {text!r} is not a positive integer up to {_MAX_COORDINATE}", line=number)
    return int(text)


def _gff3_attributes(text: str) -> dict[str, str]:
    """GFF3 column 9: ``key=value`` pairs separated by ``;``, percent-decoded."""
    fields = {}
    for pair in text.split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep:
            fields[unquote(key)] = unquote(value)
    return fields


def _gtf_attributes(text: str) -> dict[str, str]:
    """GTF column 9: ``key "value";`` pairs (values may be bare); the first of a repeated key wins."""
    fields: dict[str, str] = {}
    for match in _GTF_PAIR.finditer(text):
        quoted, bare = match.group(2), match.group(3)
        fields.setdefault(match.group(1), quoted if quoted is not None else bare)
    return fields
