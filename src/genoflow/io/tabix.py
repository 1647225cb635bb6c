"""BGZF blocks with known virtual offsets, and the tabix (.tbi) index built from them without rereading the file.

A writer that compresses its own BGZF blocks knows where every record lands, so it can index what it
wrote: :func:`bgzf_compress` cuts a byte string into blocks and gives each block's compressed start,
:func:`virtual_offsets` turns uncompressed record offsets into BGZF virtual offsets, and
:class:`TabixIndexer` takes each record's (contig, 0-based begin, exclusive end, start and end virtual
offset) in file order and writes the index htslib's ``tabix -p vcf`` would: the same bins, chunks,
pseudo-bin and linear index (htslib's ``hts_idx_push``/``hts_idx_finish``), bins even in the order of
htslib's hash table, so that the index is htslib's byte for byte once decompressed (the compressed bytes
depend on the zlib build).

References
----------
The tabix format: hts-specs ``tabix.tex``; the binning scheme: SAMv1 section 5; htslib ``hts.c``
(``hts_idx_push``, ``compress_binning``, ``update_loff``) and ``tbx.c`` (``tbx_index``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BGZF_BLOCK_SIZE", "TBI_MAX_POS", "TabixIndexer", "bgzf_compress", "gzip_members", "read_tabix_index",
           "reg2bin", "tabix_index", "virtual_offsets"]

# Uncompressed bytes per BGZF block, as htslib writes them (0xff00): the compressed block then always fits
# the 64 KiB a block may have, even for data that does not compress.
BGZF_BLOCK_SIZE = 0xFF00
_BGZF_HEADER = bytes.fromhex("1f8b08040000000000ff060042430200")  # gzip header, the BC extra field before BSIZE
MIN_SHIFT, N_LEVELS = 14, 5  # the .tbi scheme: 16 kb windows, 6 levels of bins
TBI_MAX_POS = 1 << (MIN_SHIFT + 3 * N_LEVELS)  # 2**29: longer contigs need a CSI index
META_BIN = ((1 << (3 * N_LEVELS + 3)) - 1) // 7 + 1  # 37450, the pseudo-bin of per-contig totals
_N_BINS = META_BIN - 1
_MIN_MARKER_DIST = 0x10000  # htslib merges a bin into its parent when it spans less compressed data
_TBX_VCF, _COL_SEQ, _COL_BEG, _COL_END, _META_CHAR, _SKIP = 2, 1, 2, 0, ord("#"), 0
_NONE = -1  # an unset linear-index window


def bgzf_compress(data: bytes | memoryview, level: int = 6) -> tuple[bytes, np.ndarray]:
    """``data`` as BGZF blocks of :data:`BGZF_BLOCK_SIZE` uncompressed bytes, without the end-of-file block.

    Returns
    -------
    compressed : bytes
    block_starts : numpy.ndarray, shape (n_blocks + 1,) int64
        The compressed offset where each block starts, and the total length last.
    """
    view = memoryview(data)
    blocks, starts, at = [], [0], 0
    for lo in range(0, len(view), BGZF_BLOCK_SIZE):
        chunk = view[lo : lo + BGZF_BLOCK_SIZE]
        deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
        body = deflate.compress(chunk) + deflate.flush()
        block = b"".join((_BGZF_HEADER, struct.pack("<H", len(body) + 25), body,
                          struct.pack("<II", zlib.crc32(chunk), len(chunk))))
        blocks.append(block)
        at += len(block)
        starts.append(at)
    return b"".join(blocks), np.asarray(starts, dtype=np.int64)


def virtual_offsets(uncompressed: np.ndarray, block_starts: np.ndarray, size: int) -> np.ndarray:
    """BGZF virtual offsets (compressed block start << 16 | offset in block) of uncompressed offsets.

    ``block_starts`` is :func:`bgzf_compress`'s for data of ``size`` uncompressed bytes. An offset at the
    end of a block points at the start of the next block (the end of the data: the byte after the last
    block), as htslib's ``bgzf_tell`` says after reading a line that ends a block: the index then holds
    the offsets ``tabix`` would write for the same file.
    """
    offsets = np.asarray(uncompressed, dtype=np.int64)
    block, within = np.divmod(offsets, BGZF_BLOCK_SIZE)
    at_end = offsets == size
    block[at_end], within[at_end] = len(block_starts) - 1, 0
    return (block_starts[block] << 16) | within


def reg2bin(beg, end) -> np.ndarray:
    """The smallest bin holding [beg, end) (0-based, end exclusive), vectorised (SAMv1 section 5.3)."""
    beg = np.asarray(beg, dtype=np.int64)
    last = np.asarray(end, dtype=np.int64) - 1
    bins = np.zeros(np.broadcast(beg, last).shape, dtype=np.int64)
    done = np.zeros(bins.shape, dtype=bool)
    for level in range(N_LEVELS, 0, -1):
        shift = MIN_SHIFT + 3 * (N_LEVELS - level)
        first = ((1 << 3 * level) - 1) // 7
        here = ~done & ((beg >> shift) == (last >> shift))
        bins[here] = first + (beg >> shift)[here]
        done |= here
    return bins


@dataclass
class _Contig:
    """One contig's index while records arrive: chunks per bin, the linear index, the pseudo-bin totals."""

    name: str
    bins: dict[int, list[list[int]]] = field(default_factory=dict)
    linear: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    off_beg: int = 0
    off_end: int = 0
    n_records: int = 0
    last_beg: int = -1


class TabixIndexer:
    """A VCF's .tbi built from its records' coordinates and virtual offsets, pushed in file order.

    Memory grows with the number of bins and 16 kb windows, not with the number of records: pushes may
    come in any number of batches (one per part of a file written in parts, offsets already shifted).

    Examples
    --------
    >>> indexer = TabixIndexer()
    >>> indexer.push(["chr1", "chr1"], [99, 199], [100, 201], [0, 50], [50, 100])
    >>> read_tabix_index(indexer.to_bytes())["names"]
    ['chr1']
    """

    def __init__(self):
        self._contigs: list[_Contig] = []
        self._seen: set[str] = set()
        self._run: list[int] | None = None  # [bin, start, end] of the current run of records in one bin

    def push(self, contigs, beg, end, vstart, vend) -> None:
        """Add records in file order.

        Parameters
        ----------
        contigs : sequence of str, length n
        beg, end : array-like of int, shape (n,)
            0-based begin and exclusive end on the contig (VCF: POS - 1 and POS - 1 + len(REF)).
        vstart, vend : array-like of int, shape (n,)
            Virtual offsets of each record's first byte and of the byte after its newline.

        Raises
        ------
        ValueError
            If a contig's records are not together, positions decrease within a contig, an end is
            before its begin, or a record ends past :data:`TBI_MAX_POS`.
        """
        names = np.asarray(contigs, dtype=object)
        arrays = [np.asarray(a, dtype=np.int64) for a in (beg, end, vstart, vend)]
        if len({len(names), *map(len, arrays)}) != 1:
            raise ValueError("TabixIndexer.push: contigs, beg, end, vstart and vend must have the same length")
        if len(names) == 0:
            return
        cuts = np.flatnonzero(names[1:] != names[:-1]) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(names)], strict=True):
            self._push_contig(str(names[lo]), *(a[lo:hi] for a in arrays))

    def _push_contig(self, name: str, beg, end, vstart, vend) -> None:
        contig = self._contig(name)
        if beg[0] < contig.last_beg or np.any(np.diff(beg) < 0):
            raise ValueError(f"TabixIndexer.push: positions on {name} are not sorted")
        if np.any(end < beg):
            raise ValueError(f"TabixIndexer.push: a record on {name} ends before it begins")
        if end.max() > TBI_MAX_POS:
            raise ValueError(f"TabixIndexer.push: a record on {name} ends at {end.max()}, past the {TBI_MAX_POS} "
                             "a .tbi index can hold (use a CSI index)")
        beg, end = np.maximum(beg, 0), np.maximum(end, 1)  # htslib: VCF POS=0 goes into the first window
        if contig.n_records == 0:
            contig.off_beg = int(vstart[0])
        contig.off_end, contig.n_records, contig.last_beg = int(vend[-1]), contig.n_records + len(beg), int(beg[-1])
        self._add_chunks(contig, reg2bin(beg, end), vstart, vend)
        self._add_linear(contig, beg, end, vstart)

    def _contig(self, name: str) -> _Contig:
        if self._contigs and self._contigs[-1].name == name:
            return self._contigs[-1]
        if name in self._seen:
            raise ValueError(f"TabixIndexer.push: the records of {name} are not together (sort by contig first)")
        self._close_run()
        self._seen.add(name)
        self._contigs.append(_Contig(name))
        return self._contigs[-1]

    def _add_chunks(self, contig: _Contig, bins, vstart, vend) -> None:
        """One chunk per run of consecutive records in the same bin (htslib starts a chunk when the bin changes)."""
        starts = np.r_[0, np.flatnonzero(bins[1:] != bins[:-1]) + 1]
        ends = np.r_[starts[1:], len(bins)] - 1
        for bin_, lo, hi in zip(bins[starts].tolist(), vstart[starts].tolist(), vend[ends].tolist(), strict=True):
            if self._run is not None and self._run[0] == bin_:
                self._run[2] = hi  # the run goes on from the previous batch
                continue
            self._close_run()
            self._run = [bin_, lo, hi]

    def _close_run(self) -> None:
        if self._run is not None:
            bin_, lo, hi = self._run
            self._contigs[-1].bins.setdefault(bin_, []).append([lo, hi])
            self._run = None

    @staticmethod
    def _add_linear(contig: _Contig, beg, end, vstart) -> None:
        """Each 16 kb window keeps the start of the first record that overlaps it."""
        first, last = beg >> MIN_SHIFT, (end - 1) >> MIN_SHIFT
        width = last - first + 1
        windows = np.repeat(first, width) + (np.arange(width.sum()) - np.repeat(np.cumsum(width) - width, width))
        offsets = np.repeat(vstart, width)
        if last.max() + 1 > len(contig.linear):
            contig.linear = np.r_[contig.linear, np.full(last.max() + 1 - len(contig.linear), _NONE)]
        window, at = np.unique(windows, return_index=True)  # the first record in file order wins
        unset = contig.linear[window] == _NONE
        contig.linear[window[unset]] = offsets[at[unset]]

    def to_bytes(self, level: int = 6) -> bytes:
        """The .tbi file: BGZF-compressed, with its end-of-file block."""
        from genoflow.pipeline.vcf_ingest import BGZF_EOF

        self._close_run()
        names = b"".join(c.name.encode() + b"\0" for c in self._contigs)
        parts = [b"TBI\1", struct.pack("<8i", len(self._contigs), _TBX_VCF, _COL_SEQ, _COL_BEG, _COL_END,
                                       _META_CHAR, _SKIP, len(names)), names]
        parts.extend(_contig_bytes(c) for c in self._contigs)
        parts.append(struct.pack("<Q", 0))  # n_no_coor: VCF records always have a position
        return bgzf_compress(b"".join(parts), level)[0] + BGZF_EOF


def _contig_bytes(contig: _Contig) -> bytes:
    order = _khash_order([*contig.bins, META_BIN])
    bins = _compress_binning({b: sorted(chunks) for b, chunks in contig.bins.items()})
    bins[META_BIN] = [[contig.off_beg, contig.off_end], [contig.n_records, 0]]
    out = [struct.pack("<i", len(bins))]
    for bin_ in (b for b in order if b in bins):
        chunks = bins[bin_]
        out.append(struct.pack(f"<Ii{2 * len(chunks)}Q", bin_, len(chunks), *(x for c in chunks for x in c)))
    linear = contig.linear.copy()
    for i in range(len(linear) - 2, -1, -1):  # a window no record overlaps takes the next window's offset
        if linear[i] == _NONE:
            linear[i] = linear[i + 1]
    out.append(struct.pack(f"<i{len(linear)}Q", len(linear), *linear.tolist()))
    return b"".join(out)


def _khash_order(keys: list[int]) -> list[int]:
    """The order htslib writes bins in: the buckets of its khash table (integer keys hash to themselves,
    quadratic probing, the table doubles at 77% full) after inserting ``keys`` in this order. Only so that the
    index is byte for byte htslib's once decompressed; any order reads the same."""
    slots: list[int | None] = []
    for n, key in enumerate(keys):
        if n >= int(len(slots) * 0.77 + 0.5):
            slots = _khash_rehash(slots, max(4, 2 * len(slots)))
        mask, i, step = len(slots) - 1, key & (len(slots) - 1), 0
        while slots[i] is not None:
            step += 1
            i = (i + step) & mask
        slots[i] = key
    return [key for key in slots if key is not None]


def _khash_rehash(old: list[int | None], size: int) -> list[int | None]:
    """khash's in-place resize: elements move in bucket order, kicking out unmoved ones they land on."""
    keys = old + [None] * (size - len(old))
    moved, taken, mask = [False] * len(old), [False] * size, size - 1
    for j in range(len(old)):
        if keys[j] is None or moved[j]:
            continue
        key, moved[j] = keys[j], True
        while True:
            i, step = key & mask, 0
            while taken[i]:
                step += 1
                i = (i + step) & mask
            taken[i] = True
            if i < len(old) and old[i] is not None and not moved[i]:
                keys[i], key, moved[i] = key, keys[i], True
            else:
                keys[i] = key
                break
    return [k if taken[i] else None for i, k in enumerate(keys)]


def _compress_binning(bins: dict[int, list[list[int]]]) -> dict[int, list[list[int]]]:
    """htslib's ``compress_binning``: a bin spanning under 64 KiB of compressed data joins its parent (when
    the parent exists), deepest level first; then chunks that touch the same BGZF block are merged."""
    for level in range(N_LEVELS, 0, -1):
        first = ((1 << 3 * level) - 1) // 7
        for bin_ in [b for b in bins if first <= b < _N_BINS]:
            chunks = bins[bin_]
            parent = (bin_ - 1) >> 3
            if (chunks[-1][1] >> 16) - (chunks[0][0] >> 16) < _MIN_MARKER_DIST and parent in bins:
                bins[parent] = sorted(bins[parent] + bins.pop(bin_))
    for bin_, chunks in bins.items():
        merged = [list(chunks[0])]
        for lo, hi in chunks[1:]:
            if merged[-1][1] >> 16 >= lo >> 16:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        bins[bin_] = merged
    return bins


def tabix_index(contigs, beg, end, vstart, vend, level: int = 6) -> bytes:
    """The .tbi of one batch of records (see :meth:`TabixIndexer.push`)."""
    indexer = TabixIndexer()
    indexer.push(contigs, beg, end, vstart, vend)
    return indexer.to_bytes(level)


def read_tabix_index(data: bytes) -> dict:
    """Parse a .tbi (BGZF-compressed, as written by htslib or :class:`TabixIndexer`).

    Returns
    -------
    dict
        ``header`` (format, col_seq, col_beg, col_end, meta, skip), ``names`` (list of str), ``refs``
        (per contig: ``bins`` {bin: [(beg, end) virtual offsets]}, ``linear`` [virtual offsets]) and
        ``n_no_coor`` (None when absent).

    Raises
    ------
    ValueError
        If ``data`` is not a tabix index.
    """
    raw = gzip_members(data)
    if raw[:4] != b"TBI\1":
        raise ValueError("read_tabix_index: not a tabix index (no TBI\\1 magic)")
    n_ref, *header, l_nm = struct.unpack_from("<8i", raw, 4)
    at = 36
    names = raw[at : at + l_nm].split(b"\0")[:-1]
    at += l_nm
    refs = []
    for _ in range(n_ref):
        (n_bin,), at = struct.unpack_from("<i", raw, at), at + 4
        bins = {}
        for _ in range(n_bin):
            bin_, n_chunk = struct.unpack_from("<Ii", raw, at)
            flat = struct.unpack_from(f"<{2 * n_chunk}Q", raw, at + 8)
            bins[bin_] = list(zip(flat[::2], flat[1::2], strict=True))
            at += 8 + 16 * n_chunk
        (n_intv,), at = struct.unpack_from("<i", raw, at), at + 4
        refs.append({"bins": bins, "linear": list(struct.unpack_from(f"<{n_intv}Q", raw, at))})
        at += 8 * n_intv
    n_no_coor = struct.unpack_from("<Q", raw, at)[0] if len(raw) >= at + 8 else None
    keys = ("format", "col_seq", "col_beg", "col_end", "meta", "skip")
    return {"header": dict(zip(keys, header, strict=True)), "names": [n.decode() for n in names], "refs": refs,
            "n_no_coor": n_no_coor}


def gzip_members(data: bytes) -> bytes:
    """The decompressed content of concatenated gzip members (BGZF blocks)."""
    out, view = [], data
    while view:
        decompressor = zlib.decompressobj(31)
        out.append(decompressor.decompress(view))
        view = decompressor.unused_data
    return b"".join(out)
