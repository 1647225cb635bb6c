"""The aligned-read table: one row per primary alignment of a read (the ``align`` step's ``reads/``).

A columnar table, not BAM (decision 0016): Spark reads and partitions it natively, the caller needs
each read's bases already projected on the reference (no CIGAR walk per base in Python), and it needs
no C library on the executors. ``cigar`` keeps the alignment for inspection.

Columns
    patient (string)        the patient folder name; the VCF sample name of the called genotypes
    contig (string)         reference sequence name
    start (int64)           0-based leftmost reference position of the alignment
    end (int64)             0-based exclusive end on the reference
    strand (int8)           +1 forward, -1 reverse
    mapq (int16)            minimap2's mapping quality (0-60)
    cigar (string)          SAM CIGAR of the alignment (soft clips included)
    read_name (string)      FASTQ name without the /1, /2 suffix
    mate (int8)             0 single-end, 1 or 2 for paired reads
    mate_start (int64)      0-based start of the mate's alignment, null when single-end or mate unmapped
    pair_key (string)       samtools markdup's duplicate key of a pair: the contig, then both mates' unclipped 5'
                            ends and strands, ordered by position; null unless both mates are kept on one contig
                            (single-end reads never have one)
    pair_score (int64)      Picard's duplicate score of the pair: the sum of both mates' base qualities >= 15
    ref_bases (binary)      the read's bases on reference positions start..end-1: one byte per position,
                            upper-case ACGTN, ``*`` for a deletion; insertions and clips are left out
    ref_quals (binary)      Phred base qualities (raw, not +33) aligned with ``ref_bases``; 0 for ``*``

``len(ref_bases) == len(ref_quals) == end - start`` in every row. Each file (a chunk of one patient's
reads) is sorted by contig (reference order) and start, in row groups of one contig each, written with
statistics of ``contig``, ``start`` and ``end``: the call step reads, per genome region, only the row
groups that overlap it.

Duplicates are not a flag column: the align step's ``duplicates/`` table
(:data:`DUPLICATE_SCHEMA`) names the pairs that a better pair with the same ``pair_key`` duplicates, so
the reads are written once, straight from the aligner, and only the keys are shuffled to find them.
"""

from __future__ import annotations

import pyarrow as pa

from genoflow.genotypes import Column, spark_ddl

__all__ = ["ALIGNED_READ_SCHEMA", "ALIGNED_READ_DDL", "DELETION", "DUPLICATE_SCHEMA", "CALLED_EXTRA_COLUMNS"]

DELETION = ord("*")

ALIGNED_READ_SCHEMA = pa.schema([
    ("patient", pa.string()),
    ("contig", pa.string()),
    ("start", pa.int64()),
    ("end", pa.int64()),
    ("strand", pa.int8()),
    ("mapq", pa.int16()),
    ("cigar", pa.string()),
    ("read_name", pa.string()),
    ("mate", pa.int8()),
    ("mate_start", pa.int64()),
    ("pair_key", pa.string()),
    ("pair_score", pa.int64()),
    ("ref_bases", pa.binary()),
    ("ref_quals", pa.binary()),
])

# The align step's duplicates/: one row per duplicate pair (both its mates are duplicates), by read name.
DUPLICATE_SCHEMA = pa.schema([("patient", pa.string()), ("read_name", pa.string())])

ALIGNED_READ_DDL = (
    "patient string, contig string, start long, end long, strand byte, mapq short, cigar string, "
    "read_name string, mate byte, mate_start long, pair_key string, pair_score long, ref_bases binary, ref_quals binary"
)

# The call step's table has the genotype table's columns (genoflow.genotypes.GENOTYPE_COLUMNS, QC columns
# null) and these:
CALLED_EXTRA = (
    Column("qual", pa.float64(), "phred of P(site not variant)"),
    Column("gq", pa.binary(), "uint8 per sample: genotype quality, capped 99"),
    Column("dp", pa.binary(), "little-endian uint16 per sample: filtered read depth, capped 65535"),
)
CALLED_EXTRA_COLUMNS = spark_ddl(CALLED_EXTRA)  # "qual double, gq binary, dp binary"
