"""Principal components of ancestry, like ``plink2 --pca`` on an LD-pruned variant set.

Genotypes are standardised as plink2 does, ``z = (x - 2p) / sqrt(2p(1 - p))`` with ``p`` the ALT
frequency over the samples, and a missing call set to 0 (mean imputation). The sample relationship
matrix ``K = Z'Z / M`` (samples x samples) is accumulated over blocks of variants in the Spark
executors (each partition adds its block's ``Z_b'Z_b``), summed row band by row band through a
shuffle, and eigendecomposed on the driver.

Why the Gram matrix rather than a randomized SVD: for a cohort of up to some tens of thousands of
patients, ``n x n`` float64 fits in a Python process (8k patients: 512 MB), one pass over the
variants gives the exact decomposition plink2 computes, and the result does not depend on a random
start or an iteration count. The memory is bounded by samples², never by the number of variants;
no JVM ever holds more than one band of ``_BAND_BYTES`` (a whole partial Gram as one task result
ran the 2 GB driver out of heap at 8k patients); past ~30k samples a randomized range finder over
the same blocks would be the next step.

Projection: with ``K = U diag(lambda) U'``, the sample scores are ``U * sqrt(n)`` (unit variance per
component) and the variant loadings ``V = Z'U sqrt(n) / (M lambda)`` satisfy ``Z V = U sqrt(n)``, so
projecting a training sample reproduces its score, and a new patient is projected with the same
formula (:class:`genoflow.features.spec.FeatureSpec`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoflow.genotypes import MISSING, stack_dosages

__all__ = ["Pca", "standardise", "gram_block", "pca_from_gram", "spark_gram", "spark_loadings"]

# Bytes of one row band of a partial Gram matrix: the unit that Spark serialises, shuffles and sends
# to the driver (the JVM holds a record whole).
_BAND_BYTES = 32 << 20


@dataclass(frozen=True, eq=False)
class Pca:
    """Top principal components.

    Attributes
    ----------
    eigenvalues : (k,) float64
        Of ``K = Z'Z / M`` (plink2's ``.eigenval``).
    scores : (n, k) float64
        Sample scores, ``U * sqrt(n)`` (plink2's ``.eigenvec`` columns times ``sqrt(n)``).
    n_variants : int
        ``M``, the variants the matrix was built from.
    """

    eigenvalues: np.ndarray
    scores: np.ndarray
    n_variants: int


def standardise(dosages: np.ndarray, alt_freq: np.ndarray) -> np.ndarray:
    """plink2's variance-standardised genotypes; missing -> 0. Shape (m, n) float64.

    Parameters
    ----------
    dosages : (m, n) int8, ``-1`` missing
    alt_freq : (m,) float64, ALT frequencies strictly between 0 and 1
    """
    p = np.asarray(alt_freq, dtype=np.float64)[:, None]
    if ((p <= 0) | (p >= 1)).any():
        raise ValueError("alt_freq: every variant needs 0 < p < 1 (drop monomorphic variants first)")
    z = (dosages.astype(np.float64) - 2.0 * p) / np.sqrt(2.0 * p * (1.0 - p))
    return np.where(dosages == MISSING, 0.0, z)


def gram_block(dosages: np.ndarray, alt_freq: np.ndarray) -> np.ndarray:
    """``Z_b'Z_b`` of one block of variants, shape (n, n)."""
    z = standardise(dosages, alt_freq)
    return z.T @ z


def pca_from_gram(gram: np.ndarray, n_variants: int, k: int) -> Pca:
    """Top ``k`` components from the summed ``Z'Z`` (n, n) over ``n_variants`` variants.

    Eigenvector signs are fixed so that each column's largest-magnitude entry is positive
    (eigenvectors have no intrinsic sign; this makes reruns identical).
    """
    from scipy.linalg import eigh

    n = gram.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"pca: need 1 <= components < samples ({n}), got {k}")
    if n_variants < 1:
        raise ValueError("pca: no variants to build the relationship matrix from")
    # Only the top k eigenpairs (LAPACK's syevr over an index range): the full set costs several
    # times more at thousands of samples.
    values, vectors = eigh(gram, subset_by_index=[n - k, n - 1])
    values /= n_variants
    top = np.argsort(values)[::-1]
    values, vectors = values[top], vectors[:, top]
    flip = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(k)])
    return Pca(values, vectors * flip * np.sqrt(n), int(n_variants))


def loadings(dosages: np.ndarray, alt_freq: np.ndarray, pca: Pca) -> np.ndarray:
    """Variant loadings ``V`` (m, k) of a block: ``z @ scores / (M lambda)``, so that ``Z'V = scores``."""
    z = standardise(dosages, alt_freq)
    return z @ pca.scores / (pca.n_variants * pca.eigenvalues)


# --------------------------------------------------------------------------- Spark


def _blocks(rows, sample_index: np.ndarray, rows_per_block: int = 2048):
    """(dosages (m, n) int8, alt_freq (m,)) blocks from an iterator of Rows (dosages, alt_af)."""
    packed, freq = [], []
    for row in rows:
        packed.append(row["dosages"])
        freq.append(row["alt_af"])
        if len(packed) == rows_per_block:
            yield stack_dosages(packed, sample_index), np.asarray(freq)
            packed, freq = [], []
    if packed:
        yield stack_dosages(packed, sample_index), np.asarray(freq)


def spark_gram(variants, sample_index: np.ndarray) -> tuple[np.ndarray, int]:
    """Spark: ``Z'Z`` summed over the rows of ``variants`` (dosages, alt_af) and their count.

    The rows are coalesced to one partition per core. Each partition accumulates one (n, n) partial
    in its Python worker and emits it as row bands of at most ``_BAND_BYTES``; ``reduceByKey`` sums
    each band over the partitions (a shuffle, which spills to disk), and the driver assembles the
    bands one partition at a time (``toLocalIterator``). The driver receives one matrix and never a
    genotype.
    """
    index = np.asarray(sample_index, dtype=np.int64)
    n = index.size
    band = max(1, _BAND_BYTES // (8 * max(n, 1)))

    def partial(rows):
        gram, count = np.zeros((n, n)), 0
        for block, freq in _blocks(rows, index):
            gram += gram_block(block, freq)
            count += block.shape[0]
        for start in range(0, n, band):
            yield start, (gram[start : start + band].copy(), count)

    def add(a, b):
        return a[0] + b[0], a[1] + b[1]

    n_bands = -(-n // band)
    gram, count = np.zeros((n, n)), 0
    variant_rows = variants.select("dosages", "alt_af").rdd
    # One partial per core is all the parallelism there is; each further partition adds n² to the shuffle.
    cores = variant_rows.context.defaultParallelism
    variant_rows = variant_rows.coalesce(max(1, min(variant_rows.getNumPartitions(), cores)))
    summed = variant_rows.mapPartitions(partial).reduceByKey(add, n_bands)
    for start, (band_rows, total) in summed.toLocalIterator():
        gram[start : start + band_rows.shape[0]] = band_rows
        count = total  # every band carries the variant count of all partitions
    return gram, count


def spark_loadings(variants, sample_index: np.ndarray, pca: Pca):
    """Spark: per-variant loadings; rows (contig, pos, ref, alt, alt_af, loadings array<double>)."""
    index = np.asarray(sample_index, dtype=np.int64)
    ddl = "contig string, pos long, ref string, alt string, alt_af double, loadings array<double>"

    def load(batches):
        for batch in batches:
            if batch.empty:
                continue
            block = stack_dosages(batch["dosages"], index)
            v = loadings(block, batch["alt_af"].to_numpy(), pca)
            out = batch[["contig", "pos", "ref", "alt", "alt_af"]].copy()
            out["loadings"] = list(v)
            yield out

    return variants.select("contig", "pos", "ref", "alt", "alt_af", "dosages").mapInPandas(load, ddl)
