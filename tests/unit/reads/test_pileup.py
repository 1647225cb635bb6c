"""Tests of the window pileup (genoflow.reads.pileup): hand-computed depths and log-likelihood sums."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from genoflow.reads.pileup import log_terms, pileup_window

A, C, G, T = range(4)


def terms(q: int) -> tuple[float, float, float]:
    """(hom, het, other) of one base of quality q, written out from the model."""
    e = 10 ** (-q / 10)
    return math.log(1 - e), math.log((1 - e) / 2 + e / 6), math.log(e / 3)


def test_log_terms__match_the_model():
    for q in (2, 13, 20, 30, 41, 60):
        assert np.allclose([t[0] for t in log_terms(np.array([q]))], terms(q))


def test_log_terms__quality_0_is_no_evidence():
    hom, het, other = log_terms(np.array([0, 1]))
    assert np.allclose(hom, other) and np.allclose(het, other)  # e capped at 3/4: every genotype alike
    assert np.isfinite(hom).all()


def test_pileup_window__three_reads():
    # Window 100..104. Sample 0: AACGT from 99 (the A at 99 is outside, the G at 102 has Q 10 < 13),
    # C*GN from 101 (a deletion and an N: dropped). Sample 1: TTT from 103 (Q 12 at 104: dropped; 105 outside).
    bases = [b"AACGT", b"C*GN", b"TTT"]
    quals = [bytes([30, 30, 20, 10, 40]), bytes([20, 0, 30, 30]), bytes([13, 12, 40])]
    p = pileup_window(bases, quals, [99, 101, 103], [0, 0, 1], 2, 100, 5, 13)
    assert p.depth.shape == (2, 5, 4) and p.win_start == 100
    expected = np.zeros((2, 5, 4), dtype=int)
    expected[0, 0, A] = 1
    expected[0, 1, C] = 2
    expected[0, 3, T] = 1
    expected[0, 3, G] = 1
    expected[1, 3, T] = 1
    assert (p.depth == expected).all()
    assert p.hom[0, 1, C] == pytest.approx(2 * terms(20)[0])
    assert p.het[0, 1, C] == pytest.approx(2 * terms(20)[1])
    assert p.other[0, 1, C] == pytest.approx(2 * terms(20)[2])
    assert p.hom[0, 3, T] == pytest.approx(terms(40)[0]) and p.other[0, 3, G] == pytest.approx(terms(30)[2])
    assert p.het[1, 3, T] == pytest.approx(terms(13)[1])
    for sums in (p.hom, p.het, p.other):  # nothing where nothing was counted
        assert (sums[expected == 0] == 0).all()


def test_pileup_window__quality_capped_by_mapq():
    # As bcftools: a Q30 base of a MAPQ 15 read counts as Q15; the MAPQ does not decide which bases are kept.
    p = pileup_window([b"GA", b"G"], [bytes([30, 12]), bytes([30])], [0, 0], [0, 0], 1, 0, 2, 13, mapq=[15, 60])
    assert p.depth[0, :, G].tolist() == [2, 0] and p.depth[0, 1].sum() == 0
    assert p.hom[0, 0, G] == pytest.approx(terms(15)[0] + terms(30)[0])
    assert p.other[0, 0, G] == pytest.approx(terms(15)[2] + terms(30)[2])


def test_pileup_window__skipped_positions_not_counted():
    # Two mates over 0..5 and 3..8: mate 2's 3..4 (the overlap) skipped, its 5..7 counted.
    p = pileup_window([b"AAAAA", b"AAAAA"], [bytes([30] * 5)] * 2, [0, 3], [0, 0], 1, 0, 10, 13,
                      skip_start=[0, 3], skip_end=[0, 5])
    assert p.depth[0, :, A].tolist() == [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]


def test_pileup_window__read_spanning_two_windows_counted_once_per_position():
    rng = np.random.default_rng(1)
    bases = [bytes(rng.choice(list(b"ACGT"), 50).astype(np.uint8)) for _ in range(20)]
    quals = [bytes(rng.integers(13, 41, 50).astype(np.uint8)) for _ in range(20)]
    starts = rng.integers(0, 150, 20)
    samples = rng.integers(0, 3, 20)
    whole = pileup_window(bases, quals, starts, samples, 3, 0, 200, 13)
    halves = [pileup_window(bases, quals, starts, samples, 3, s, 100, 13) for s in (0, 100)]
    assert (np.concatenate([h.depth for h in halves], axis=1) == whole.depth).all()
    assert np.allclose(np.concatenate([h.het for h in halves], axis=1), whole.het)
    assert whole.depth.sum() == 20 * 50  # every base once: all lie in 0..199 and pass Q 13


def reference_pileup(bases, quals, starts, samples, n_samples, win_start, win_len, min_baseq, mapq, skip_start,
                     skip_end):
    """The pileup written out base by base in plain Python (no evidence filter: every column summed)."""
    depth = np.zeros((n_samples, win_len, 4), dtype=np.int64)
    sums = [np.zeros((n_samples, win_len, 4)) for _ in range(3)]
    for read, qual, start, sample, cap, lo, hi in zip(bases, quals, starts, samples, mapq, skip_start, skip_end,
                                                      strict=True):
        for k, (base, q) in enumerate(zip(read, qual, strict=True)):
            column, position = start + k - win_start, start + k
            if not 0 <= column < win_len or lo <= position < hi or chr(base) not in "ACGT" or q < min_baseq:
                continue
            allele = "ACGT".index(chr(base))
            depth[sample, column, allele] += 1
            for total, term in zip(sums, terms(min(q, cap)) if min(q, cap) >= 2 else log_terms(np.array([min(q, cap)])),
                                   strict=True):
                total[sample, column, allele] += float(term)
    return depth, sums


def test_pileup_window__matches_a_base_by_base_loop():
    rng = np.random.default_rng(2)
    n = 60
    bases = [bytes(rng.choice(list(b"ACGTN*"), 30).astype(np.uint8)) for _ in range(n)]
    quals = [bytes(rng.integers(0, 41, 30).astype(np.uint8)) for _ in range(n)]
    starts, samples, mapq = rng.integers(-20, 60, n), rng.integers(0, 4, n), rng.integers(0, 61, n)
    skip_start = starts + rng.integers(0, 30, n)
    skip_end = skip_start + rng.integers(0, 10, n) * (rng.random(n) < 0.5)
    got = pileup_window(bases, quals, starts, samples, 4, 5, 50, 13, mapq=mapq, skip_start=skip_start,
                        skip_end=skip_end)
    depth, (hom, het, other) = reference_pileup(bases, quals, starts, samples, 4, 5, 50, 13, mapq, skip_start,
                                                skip_end)
    assert (got.depth == depth).all() and depth.sum() > 200
    assert np.allclose(got.hom, hom, rtol=1e-12) and np.allclose(got.het, het, rtol=1e-12)
    assert np.allclose(got.other, other, rtol=1e-12)


def test_pileup_window__arrow_slices_read_in_place():
    bases = pa.array([b"GG", b"ACGT", b"TT"], pa.binary()).slice(1)
    quals = pa.chunked_array([pa.array([bytes([9, 9]), bytes([30] * 4), bytes([20, 20])], pa.binary()).slice(1)])
    from_arrow = pileup_window(bases, quals, [10, 12], [0, 0], 1, 10, 4, 13)
    from_bytes = pileup_window([b"ACGT", b"TT"], [bytes([30] * 4), bytes([20, 20])], [10, 12], [0, 0], 1, 10, 4, 13)
    assert (from_arrow.depth == from_bytes.depth).all() and np.allclose(from_arrow.other, from_bytes.other)
    assert from_arrow.depth.sum() == 6


def test_pileup_window__bases_and_qualities_of_other_lengths_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        pileup_window([b"ACG"], [bytes([30, 30])], [0], [0], 1, 0, 10, 13)


def test_pileup_window__sample_out_of_range_rejected():
    with pytest.raises(ValueError, match=r"sample_idx must lie in \[0, 2\)"):
        pileup_window([b"A"], [bytes([30])], [0], [2], 2, 0, 10, 13)


def test_pileup_window__no_reads():
    p = pileup_window([], [], [], [], 2, 0, 10, 13)
    assert p.depth.shape == (2, 10, 4) and not p.depth.any()


def _noisy_window(seed: int = 3, n_samples: int = 4, win_len: int = 600):
    """Reads of a window over a random reference: 30x per sample, 2 % errors, a few variants, some N and
    lower-case reference bases, qualities 2..40, some reads past both window ends."""
    rng = np.random.default_rng(seed)
    reference = rng.choice(np.frombuffer(b"ACGTacgtN", dtype=np.uint8), win_len + 200, p=[.225] * 4 + [.02] * 5)
    upper = reference & 0xDF
    variants = rng.choice(np.arange(win_len + 200), 12, replace=False)
    reads, quals, starts, samples = [], [], [], []
    for sample in range(n_samples):
        haplotypes = [upper.copy(), upper.copy()]
        for v in variants.tolist():
            haplotypes[int(rng.integers(2))][v] = rng.choice(np.frombuffer(b"ACGT", dtype=np.uint8))
        for start in rng.integers(0, win_len + 100, (win_len + 200) * 30 // 100).tolist():
            bases = haplotypes[int(rng.integers(2))][start:start + 100].copy()
            wrong = rng.random(len(bases)) < 0.02
            bases[wrong] = rng.choice(np.frombuffer(b"ACGT", dtype=np.uint8), int(wrong.sum()))
            reads.append(bases.tobytes())
            quals.append(rng.integers(2, 41, len(bases)).astype(np.uint8).tobytes())
            starts.append(start)
            samples.append(sample)
    mapq = rng.integers(20, 61, len(reads))
    return reference[100:100 + win_len], reads, quals, starts, samples, mapq


@pytest.mark.parametrize("min_alt_reads", [0, 2, 3])
def test_pileup_window__evidence_only_pileup_gives_the_same_calls(min_alt_reads):
    """With ref_codes the log sums are left out where no call can be: the same depths and the same calls."""
    from genoflow.reads.genotyping import call_window

    ref, reads, quals, starts, samples, mapq = _noisy_window()
    args = (pa.array(reads, pa.binary()), pa.array(quals, pa.binary()), starts, samples, 4, 100, len(ref), 13)
    full = pileup_window(*args, mapq=mapq)
    lean = pileup_window(*args, mapq=mapq, ref_codes=ref, min_alt_reads=min_alt_reads)
    assert np.array_equal(full.depth, lean.depth)
    a = call_window(full, ref, min_alt_reads=min_alt_reads)
    b = call_window(lean, ref, min_alt_reads=min_alt_reads)
    assert len(a) > 5 and a.n_candidates == b.n_candidates
    for field in ("pos", "ref", "alt", "qual", "af", "dosage", "gq", "dp"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    if min_alt_reads > 0:
        assert (lean.hom == 0).all(axis=(0, 2)).sum() > len(ref) // 2  # the sums were skipped at most columns
