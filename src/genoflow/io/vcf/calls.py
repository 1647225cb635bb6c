"""Call decoding (vectorised): the GT of every sample of a block's records as allele indices, DS
dosages of records without GT, GQ/DP values and their filters, the first bad call of a block, and the
per-ALT dosages (`_dosages`). No genotype is touched one by one in Python."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genoflow._kernels.vcf import ALLELE_OF_BYTE, BAD_ALLELE, allele_dosages, highest_alleles
from genoflow.errors import InputError
from genoflow.genotypes import MISSING
from genoflow.io.vcf.records import _Lines, _RecordProblem, _Records, format_layout

_TAB, _COLON, _SLASH, _PIPE, _DOT, _ZERO = (ord(c) for c in "\t:/|.0")
_ABSENT = -2  # the (absent) second allele of a haploid call; unlike MISSING it is not a no-call
_BAD = BAD_ALLELE  # a byte that is neither an allele digit nor '.'
_MAX_GT_CHARS = 16  # longer GT strings are rejected rather than padded into a huge matrix
_BLOCK = 1 << 20  # genotypes decoded per block on the general path, to bound temporaries

# Per-byte decode tables: digit -> 0..9, '.' -> missing, others -> _BAD (the compiled scan's own).
_ALLELE_LUT = ALLELE_OF_BYTE
_IS_SEP = np.zeros(256, dtype=bool)
_IS_SEP[[_SLASH, _PIPE]] = True

# Codes for problems found while decoding GT strings in bulk.
_OK, _UNPARSEABLE, _POLYPLOID, _BAD_NUMBER = 0, 1, 2, 3



@dataclass
class _Alleles:
    """Decoded calls of the valid lines: allele indices and per-genotype problem codes.

    ``first``/``second`` are ``int8`` of shape (n_lines, n_samples): allele index, -1 missing,
    -2 absent (haploid). ``code`` is ``uint8`` of the same shape, `_OK` when decoded;
    ``bad_key`` names the FORMAT key of each `_BAD_NUMBER` code's line. ``numbers`` holds the
    ``float64`` (n_lines, n_samples) values of GQ/DP (NaN when absent) when asked for, and
    ``ds`` the ``int8`` (n_alt, n_samples) DS dosages of lines without GT, by line.
    """

    first: np.ndarray
    second: np.ndarray
    code: np.ndarray
    bad_key: dict[int, str] = field(default_factory=dict)
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    ds: dict[int, np.ndarray] = field(default_factory=dict)


def _decode_genotypes(lines: _Lines, records: _Records, n_samples: int, n_alt: np.ndarray,
                      wanted: set[str]) -> _Alleles:
    line_of = np.asarray(records.index, dtype=np.int64)
    every_line = len(line_of) == len(lines)  # no empty line, no bad one: the scan's rows are the records'
    out = _Alleles(
        first=lines.first if every_line else lines.first[line_of],
        second=lines.second if every_line else lines.second[line_of],
        code=np.zeros((len(line_of), n_samples), dtype=np.uint8),
    )
    decoded = lines.decoded[line_of]
    # Only FORMAT keys some record has get a (NaN-filled) matrix: GT-only files pay nothing.
    present = set().union(*(format_layout(fmt).keys() for fmt in records.groups)) if records.groups else set()
    for key in wanted & present:
        out.numbers[key] = np.full((len(line_of), n_samples), np.nan)
    for fmt, rows in records.groups.items():
        layout = format_layout(fmt)
        rows = np.asarray(rows, dtype=np.int64)
        fields = wanted & layout.keys()
        undecoded = rows if "GT" not in layout else rows[~decoded[rows]]
        if not len(undecoded) and not fields:
            continue
        # The sample columns as text, only where the scan did not decode them or other keys are read.
        texts = [lines.samples(i) for i in line_of[rows].tolist()] if fields or "GT" not in layout else None
        if "GT" not in layout:
            _decode_ds(texts, rows, n_samples, layout, n_alt, out)
        elif len(undecoded):
            # Everything the scan left (haploid calls, multi-digit alleles, other layouts, errors).
            if texts is None:
                gt_texts = [lines.samples(i) for i in line_of[undecoded].tolist()]
            else:
                gt_texts = [t for t, redo in zip(texts, (~decoded[rows]).tolist(), strict=True) if redo]
            _decode_general(gt_texts, undecoded, n_samples, layout["GT"], out)
        # After GT: the GT decoding writes the problem codes of its rows wholesale.
        for key in sorted(fields):
            _decode_numbers(texts, rows, n_samples, layout, key, out)
    return out


def _subfield(texts: list[str], n_samples: int, layout: dict[str, int], key: str) -> pa.Array:
    """The ``key`` sub-field of every sample field of ``texts``: strings, line-major, "" when cut short."""
    index = layout[key]
    fields = pc.list_flatten(pc.split_pattern(pa.array(texts, type=pa.large_string()), "\t"))
    # Trailing sub-fields may be dropped: padding with colons makes every field long enough.
    padded = pc.binary_join_element_wise(fields, pa.scalar(":" * (index + 1), pa.large_string()),
                                         pa.scalar("", pa.large_string()))
    return pc.list_element(pc.split_pattern(padded, ":", max_splits=index + 1), index)


def _to_numbers(strings: pa.Array) -> tuple[np.ndarray, int]:
    """``float64`` values of number strings (NaN for ``.``/empty), and the index of the first bad one or -1."""
    missing = pc.or_(pc.equal(strings, "."), pc.equal(strings, ""))
    cleaned = pc.if_else(missing, pa.scalar(None, strings.type), strings)
    try:
        values = pc.cast(cleaned, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numeric = pc.match_substring_regex(strings, r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
        bad = np.flatnonzero(~(missing.to_numpy(zero_copy_only=False) | numeric.to_numpy(zero_copy_only=False)))
        return np.full(len(strings), np.nan), int(bad[0]) if len(bad) else 0
    return values.to_numpy(zero_copy_only=False).astype(np.float64), -1


def _mark_bad(out: _Alleles, rows: np.ndarray, n_samples: int, bad: int, key: str) -> None:
    row, sample = rows[bad // n_samples], bad % n_samples
    out.code[row, sample] = _BAD_NUMBER
    out.bad_key[int(row)] = key


def _decode_numbers(texts, rows, n_samples, layout, key, out: _Alleles) -> None:
    values, bad = _to_numbers(_subfield(texts, n_samples, layout, key))
    if bad >= 0:
        _mark_bad(out, rows, n_samples, bad, key)
    out.numbers[key][rows] = values.reshape(len(rows), n_samples)


def _decode_ds(texts, rows, n_samples, layout, n_alt, out: _Alleles) -> None:
    """Dosages from DS (one value per ALT allele, comma-separated) for lines without GT."""
    out.first[rows] = MISSING
    out.second[rows] = MISSING
    strings = _subfield(texts, n_samples, layout, "DS")
    width = int(max(n_alt[rows].max(initial=1), 1))
    padded = pc.binary_join_element_wise(strings, pa.scalar("," * width, strings.type), pa.scalar("", strings.type))
    per_alt = pc.split_pattern(padded, ",", max_splits=width)
    for k in range(width):
        values, bad = _to_numbers(pc.list_element(per_alt, k))
        if bad >= 0:
            _mark_bad(out, rows, n_samples, bad, "DS")
            return
        values = values.reshape(len(rows), n_samples)
        for i, row in enumerate(rows.tolist()):
            if k < n_alt[row]:
                dosage = out.ds.setdefault(row, np.empty((n_alt[row], n_samples), dtype=np.int8))
                dosage[k] = np.where(np.isnan(values[i]), MISSING, np.clip(np.rint(values[i]), 0, 2))


def _apply_call_filters(alleles: _Alleles, min_gq: float, min_dp: float) -> None:
    """Set calls below the GQ/DP thresholds to missing (NaN, an absent value, never filters)."""
    for key, threshold in (("GQ", min_gq), ("DP", min_dp)):
        if threshold <= 0 or key not in alleles.numbers:
            continue
        low = alleles.numbers[key] < threshold
        alleles.first[low] = MISSING
        alleles.second[low] = MISSING
        for row, dosage in alleles.ds.items():
            dosage[:, low[row]] = MISSING


def _decode_general(texts: list[str], rows: np.ndarray, n_samples: int, gt_index: int, out: _Alleles) -> None:
    """Decode any FORMAT layout: find each GT sub-field by byte offsets, then parse it."""
    joined = "\t".join(texts).encode("latin-1", "replace")
    # Padding lets "the byte 1 or 3 after a GT start" be read without bounds checks.
    buffer = np.frombuffer(joined + b"\0\0\0\0", dtype=np.uint8)
    start, end, absent = _locate_gt(buffer, len(joined), len(texts) * n_samples, gt_index)
    first = np.empty(len(start), dtype=np.int8)
    second = np.empty(len(start), dtype=np.int8)
    code = np.empty(len(start), dtype=np.uint8)
    for lo in range(0, len(start), _BLOCK):
        hi = lo + _BLOCK
        first[lo:hi], second[lo:hi], code[lo:hi] = _parse_gt_spans(buffer, start[lo:hi], end[lo:hi])
    # A sample field cut short before GT (trailing fields may be dropped) is a missing call.
    first[absent] = MISSING
    second[absent] = MISSING
    code[absent] = _OK
    shape = (len(texts), n_samples)
    out.first[rows] = first.reshape(shape)
    out.second[rows] = second.reshape(shape)
    out.code[rows] = code.reshape(shape)


def _locate_gt(buffer: np.ndarray, n_bytes: int, n_fields: int, gt_index: int):
    """Byte span of the GT sub-field of every tab-separated sample field in ``buffer``.

    Parameters
    ----------
    buffer : numpy.ndarray of uint8, shape (n_bytes + padding,)
        Sample fields joined by tabs (exactly ``n_fields - 1`` tabs), then a few zero bytes.
    n_bytes : int
        Length of the joined fields, without the padding.
    n_fields : int
        Number of sample fields.
    gt_index : int
        Position of GT among the ``:``-separated FORMAT keys.

    Returns
    -------
    start, end : numpy.ndarray of int64, shape (n_fields,)
        GT is ``buffer[start:end]``.
    absent : numpy.ndarray of bool, shape (n_fields,)
        The field has fewer than ``gt_index + 1`` sub-fields.
    """
    text = buffer[:n_bytes]
    tabs = np.flatnonzero(text == _TAB)
    field_start = np.concatenate(([0], tabs + 1))
    field_end = np.concatenate((tabs, [n_bytes]))
    if gt_index == 0:
        end = _guess_gt_end(buffer, field_start, field_end)
        unsure = np.flatnonzero(end < 0)
        if len(unsure):
            colons = np.flatnonzero(text == _COLON)
            padded = np.concatenate((colons, [n_bytes + 1]))
            next_colon = padded[np.searchsorted(colons, field_start[unsure])]
            end[unsure] = np.minimum(next_colon, field_end[unsure])
        return field_start, end, np.zeros(n_fields, dtype=bool)
    colons = np.flatnonzero(text == _COLON)
    # Padding past the end lets "the k-th colon after a field start" index safely.
    padded = np.concatenate((colons, np.full(gt_index + 1, n_bytes + 1)))
    first_colon = np.searchsorted(colons, field_start)
    colon_before = padded[first_colon + gt_index - 1]
    absent = colon_before >= field_end
    start = np.where(absent, field_end, colon_before + 1)
    end = np.maximum(np.minimum(padded[first_colon + gt_index], field_end), start)
    return start, end, absent


def _guess_gt_end(buffer: np.ndarray, start: np.ndarray, field_end: np.ndarray) -> np.ndarray:
    """End of a GT at the start of its field when it is ``a/b`` or ``a`` (one char alleles).

    Saves a colon search for the usual calls; -1 where the GT is something else.
    """
    after3 = start + 3
    is_three = (after3 <= field_end) & _IS_SEP[buffer[start + 1]]
    is_three &= (after3 == field_end) | (buffer[after3] == _COLON)
    after1 = start + 1
    is_one = (after1 == field_end) | ((after1 < field_end) & (buffer[after1] == _COLON))
    return np.where(is_three, after3, np.where(is_one, after1, -1))


def _parse_gt_spans(buffer: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Parse GT strings ``buffer[start:end]`` of any shape (``0``, ``1/0``, ``12|3``, ``./.``).

    One-character alleles (``a/b``, ``a``) are read at fixed offsets; anything else goes
    through `_parse_gt_matrix`.

    Parameters
    ----------
    buffer : numpy.ndarray of uint8
        The joined sample fields, padded with at least 3 zero bytes.
    start, end : numpy.ndarray of int64, shape (m,)
        GT spans.

    Returns
    -------
    first, second : numpy.ndarray of int8, shape (m,)
        Allele indices (capped at 127), -1 missing; ``second`` is -2 for haploid calls.
    code : numpy.ndarray of uint8, shape (m,)
        `_OK`, `_UNPARSEABLE` or `_POLYPLOID`.
    """
    length = end - start
    first = _ALLELE_LUT[buffer[start]]
    third = _ALLELE_LUT[buffer[start + 2]]
    diploid = (length == 3) & _IS_SEP[buffer[start + 1]] & (first != _BAD) & (third != _BAD)
    haploid = (length == 1) & (first != _BAD)
    second = np.where(diploid, third, np.int8(_ABSENT))
    code = np.zeros(len(start), dtype=np.uint8)
    rest = np.flatnonzero(~(diploid | haploid))
    if len(rest):
        first[rest], second[rest], code[rest] = _parse_gt_matrix(buffer, start[rest], end[rest])
    return first, second, code


def _parse_gt_matrix(buffer: np.ndarray, start: np.ndarray, end: np.ndarray):
    """`_parse_gt_spans` for any GT: multi-digit alleles, errors, ploidy above 2.

    The spans are gathered into a zero-padded ``(m, width)`` byte matrix; the separator, the
    digits of each allele and their place values are all found with whole-matrix operations.
    """
    length = end - start
    width = int(min(max(length.max(initial=1), 1), _MAX_GT_CHARS))
    offsets = np.arange(width)
    inside = offsets < length[:, None]
    matrix = buffer[np.minimum(start[:, None] + offsets, len(buffer) - 1)]
    matrix[~inside] = 0
    is_sep = _IS_SEP[matrix] & inside
    n_sep = is_sep.sum(axis=1)
    sep_at = np.where(n_sep > 0, is_sep.argmax(axis=1), length)
    first, first_ok = _allele_values(matrix, np.zeros_like(length), sep_at)
    second, second_ok = _allele_values(matrix, sep_at + 1, length)
    second = np.where(n_sep == 0, _ABSENT, second)
    ok = (length > 0) & (length <= _MAX_GT_CHARS) & first_ok & (second_ok | (n_sep == 0))
    code = np.where(ok, _OK, _UNPARSEABLE).astype(np.uint8)
    code[(n_sep > 1) & _well_formed(matrix, is_sep, length)] = _POLYPLOID
    return first.astype(np.int8), second.astype(np.int8), code


def _well_formed(matrix: np.ndarray, is_sep: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Rows that are alleles (digits or ``.``) joined by single separators, e.g. ``0/1/1``.

    With more than one separator such a call is triploid or more: reported as unsupported
    ploidy rather than as unparseable.
    """
    inside = np.arange(matrix.shape[1]) < length[:, None]
    allele_char = ((matrix >= _ZERO) & (matrix <= _ZERO + 9)) | (matrix == _DOT)
    chars_ok = ~(inside & ~(allele_char | is_sep)).any(axis=1)
    doubled = (is_sep[:, 1:] & is_sep[:, :-1]).any(axis=1)
    # A GT longer than the matrix (capped at _MAX_GT_CHARS) is refused below; clip so it can be looked at.
    last = np.take_along_axis(is_sep, np.clip(length - 1, 0, matrix.shape[1] - 1)[:, None], axis=1)[:, 0]
    return (length > 0) & (length <= _MAX_GT_CHARS) & chars_ok & ~doubled & ~is_sep[:, 0] & ~last


def _allele_values(matrix: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Integer value of ``matrix[i, lo[i]:hi[i]]`` per row: digits, or ``.`` for missing.

    Returns the values (capped at 127, -1 for ``.``) and whether each span was valid.
    """
    offsets = np.arange(matrix.shape[1])
    span = (offsets >= lo[:, None]) & (offsets < hi[:, None])
    digits = matrix.astype(np.int64) - _ZERO
    is_digit = (digits >= 0) & (digits <= 9)
    n_chars = hi - lo
    first_char = np.take_along_axis(matrix, np.minimum(lo, matrix.shape[1] - 1)[:, None], axis=1)[:, 0]
    is_dot = (n_chars == 1) & (first_char == _DOT)
    all_digits = (n_chars >= 1) & ~(span & ~is_digit).any(axis=1)
    place = 10 ** np.clip(hi[:, None] - 1 - offsets, 0, 18)
    value = np.where(span & is_digit, digits * place, 0).sum(axis=1)
    value = np.where(is_dot, MISSING, np.minimum(value, 127))
    return value, all_digits | is_dot


def _first_genotype_problem(lines: _Lines, records: _Records, alleles: _Alleles, n_alt: np.ndarray):
    """``(index into records, problem)`` for the first line with a bad call, or None."""
    if not len(n_alt):
        return None
    highest = highest_alleles(alleles.first, alleles.second)
    out_of_range = highest > n_alt
    bad_code = alleles.code.any(axis=1)
    bad = np.flatnonzero(out_of_range | bad_code)
    if not len(bad):
        return None
    row = int(bad[0])
    fmt = next(fmt for fmt, rows in records.groups.items() if row in rows)
    layout = format_layout(fmt)
    if bad_code[row]:
        sample = int(np.flatnonzero(alleles.code[row])[0])
    else:
        calls = np.maximum(alleles.first[row], alleles.second[row])
        sample = int(np.flatnonzero(calls > n_alt[row])[0])
    code = alleles.code[row, sample]
    key = alleles.bad_key.get(row, "GT") if code == _BAD_NUMBER else "GT"
    subfields = lines.samples(records.index[row]).split("\t")[sample].split(":")
    gt = subfields[layout[key]] if layout[key] < len(subfields) else ""
    where = f"{key} {gt!r} of sample {sample + 1} (column {10 + sample})"
    if code == _BAD_NUMBER:
        problem = f"cannot parse {where}: expected a number or '.'"
    elif code == _UNPARSEABLE:
        problem = f"cannot parse {where}: expected allele indices or '.' separated by '/' or '|'"
    elif code == _POLYPLOID:
        ploidy = gt.count("/") + gt.count("|") + 1
        problem = f"{where} has ploidy {ploidy}; only haploid and diploid calls are supported"
    else:
        allele = int(max(alleles.first[row, sample], alleles.second[row, sample]))
        problem = f"{where} uses allele {allele} but the record has only {n_alt[row]} ALT allele(s)"
    return row, _RecordProblem(problem, f"{records.contig[row]}:{records.pos[row]}")


def _raise_first(line_problem, gt_problem, records: _Records, source: str, first_line_number: int) -> None:
    """Raise the problem on the earliest line, if any."""
    candidates = []
    if line_problem is not None:
        candidates.append(line_problem)
    if gt_problem is not None:
        row, problem = gt_problem
        candidates.append((records.index[row], problem))
    if candidates:
        index, problem = min(candidates, key=lambda c: c[0])
        raise InputError(source, problem.problem, line=first_line_number + index, record=problem.record)


def _dosages(alleles: _Alleles, n_alt: np.ndarray) -> np.ndarray:
    """Split records per ALT and count alleles: ``int8`` of shape (sum(n_alt), n_samples)."""
    line_of = np.repeat(np.arange(len(n_alt)), n_alt)
    allele = (np.arange(len(line_of)) - np.repeat(np.cumsum(n_alt) - n_alt, n_alt) + 1).astype(np.int8)
    dosage = np.empty((len(line_of), alleles.first.shape[1]), dtype=np.int8)
    allele_dosages(alleles.first, alleles.second, line_of, allele, dosage)
    if alleles.ds:
        row_of_line = np.cumsum(n_alt) - n_alt
        for line, ds in alleles.ds.items():
            dosage[row_of_line[line] : row_of_line[line] + len(ds)] = ds
    return dosage
