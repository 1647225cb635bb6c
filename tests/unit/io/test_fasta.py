"""Tests of genoflow.io.fasta: reference reading, contig names and the REF check."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from genoflow.errors import InputError
from genoflow.io.fasta import check_ref_alleles, read_reference, resolve_contig

FASTA = "reference_genome/genome_sequence.fasta"
VCF = "cohort.vcf.gz"
TEXT = ">chr1 first contig\nACGTacgtNN\nGGCC\n>chr2\nTTTTGA\n"
REFERENCE = {"chr1": "ACGTACGTNNGGCC", "chr2": "TTTTGA"}


def read_error(text: bytes) -> InputError:
    with pytest.raises(InputError) as error:
        read_reference(io.BytesIO(text), source=FASTA)
    assert error.value.source == FASTA
    return error.value


def check_error(contig, pos, ref, line_numbers=None) -> InputError:
    with pytest.raises(InputError) as error:
        check_ref_alleles(
            REFERENCE,
            np.array(contig, dtype=object),
            np.array(pos),
            np.array(ref, dtype=object),
            source=VCF,
            line_numbers=None if line_numbers is None else np.array(line_numbers),
        )
    assert error.value.source == VCF
    return error.value


def test_read_reference__upper_cases_and_names_by_first_word():
    assert read_reference(io.BytesIO(TEXT.encode()), source=FASTA) == REFERENCE


def test_read_reference__gzip_and_text_streams():
    assert read_reference(io.BytesIO(gzip.compress(TEXT.encode())), source=FASTA) == REFERENCE
    assert read_reference(io.StringIO(TEXT), source=FASTA) == REFERENCE


def test_read_reference__text_before_first_header():
    error = read_error(b"ACGT\n>chr1\nACGT\n")
    assert error.line == 1 and "expected a '>' header line" in error.problem


def test_read_reference__duplicate_name():
    error = read_error(b">a\nAC\n>b\nGG\n>a x\nTT\n")
    assert error.line == 5 and "duplicate sequence name 'a'" in error.problem


def test_read_reference__empty_sequence():
    error = read_error(b">a\n>b\nAC\n")
    assert error.line == 1 and "empty" in error.problem


def test_read_reference__invalid_character():
    error = read_error(b">a\nAC\n>b\nAC\nG1T\n")
    assert error.line == 3 and "'1' at position 4" in error.problem


def test_read_reference__no_sequences():
    assert "no sequences" in read_error(b"").problem


def test_resolve_contig__exact_then_chr_prefix_either_way():
    assert resolve_contig("chr22", {"chr22", "22"}) == "chr22"
    assert resolve_contig("22", {"chr22"}) == "chr22"
    assert resolve_contig("chr22", {"22"}) == "22"
    assert resolve_contig("chrM", {"MT"}) == "MT"
    assert resolve_contig("MT", {"chrM"}) == "chrM"
    assert resolve_contig("chr23", {"chr22", "22"}) is None


def test_check_ref_alleles__matching_single_and_multi_base():
    check_ref_alleles(
        REFERENCE,
        np.array(["chr1", "1", "chr2", "chr1"], dtype=object),
        np.array([1, 3, 5, 11]),
        np.array(["A", "gtac", "GA", "GGCC"], dtype=object),
        source=VCF,
    )


def test_check_ref_alleles__empty_input():
    check_ref_alleles(
        REFERENCE, np.array([], dtype=object), np.array([], dtype=np.int64), np.array([]), source=VCF
    )


def test_check_ref_alleles__mismatch_names_line_record_and_both_alleles():
    error = check_error(["chr1", "chr2"], [1, 2], ["A", "G"], line_numbers=[40, 41])
    assert error.line == 41
    assert error.record == "chr2:2"
    assert "REF is 'G' but the reference FASTA has 'T' at chr2:2" in error.problem
    assert VCF in str(error) and "line 41" in str(error)


def test_check_ref_alleles__multi_base_mismatch_in_last_base():
    error = check_error(["chr1"], [1], ["ACGA"])
    assert error.line is None
    assert "'ACGA'" in error.problem and "'ACGT'" in error.problem


def test_check_ref_alleles__first_record_in_input_order_across_contigs():
    error = check_error(["chr2", "chr1", "chr1"], [1, 2, 1], ["T", "A", "C"], line_numbers=[5, 6, 7])
    assert error.line == 6


def test_check_ref_alleles__unknown_contig_lists_reference_contigs():
    error = check_error(["chr1", "chrX"], [1, 1], ["A", "A"], line_numbers=[3, 4])
    assert error.line == 4
    assert "'chrX' is not in the reference FASTA" in error.problem
    assert "chr1, chr2" in error.problem


def test_check_ref_alleles__ref_past_contig_end():
    error = check_error(["chr2"], [5], ["GAT"])
    assert "outside contig 'chr2' (length 6)" in error.problem
