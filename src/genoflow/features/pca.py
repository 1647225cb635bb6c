"""Principal components of ancestry, like ``plink2 --pca`` on an LD-pruned variant set.

Genotypes are standardised as plink2 does, ``z = (x - 2p) / sqrt(2p(1 - p))`` with ``p`` the ALT
frequency over the samples, and a missing call set to 0 (mean imputation). Two methods give the
top ``k`` eigenpairs of the sample relationship matrix ``K = Z'Z / M`` (samples x samples), chosen by
the number of samples (:func:`choose_method`, decision 0014):

``exact`` (:func:`spark_gram`, :func:`pca_from_gram`)
    ``Z'Z`` is accumulated over blocks of variants in the Spark executors (each partition adds its
    blocks' ``Z_b'Z_b``), summed row band by row band through a shuffle, and eigendecomposed on the
    driver: one pass, what ``plink2 --pca`` computes, no random start. Its memory is samples² per
    partial and on the driver (8k patients: 512 MB; 100k: 80 GB), and the eigensolver costs n³, so
    it is for the smaller cohorts. No JVM ever holds more than one band of ``_BAND_BYTES`` (a whole
    partial Gram as one task result ran the 2 GB driver out of heap at 8k patients).
``randomized`` (:func:`spark_randomized_pca`, :func:`randomized_pca`)
    A randomized range finder (Halko, Martinsson & Tropp 2011) in its block Krylov form, as ``plink2
    --pca approx`` (after Halko, Martinsson, Shkolnisky & Tygert 2011, via EIGENSOFT's fastpca): a
    seeded Gaussian start ``Q_0`` (n x l, ``l = k + oversampling``), then passes over the variants
    that each compute ``Z'(Z Q_j)`` (n x l partials summed over partitions), orthonormalised on the
    driver into the next block; the Rayleigh-Ritz problem on all blocks (``passes·l`` square) gives
    the eigenpairs. Memory n x l per worker and 2 x n x l x passes on the driver (the basis and its
    products; 100k patients, k = 10, 10 passes: 320 MB), never n x n.

Both return a :class:`Pca` with the same scaling and sign convention, so the loadings and every
consumer downstream do not depend on the method.

Projection: with ``K = U diag(lambda) U'``, the sample scores are ``U * sqrt(n)`` (unit variance per
component) and the variant loadings ``V = Z'U sqrt(n) / (M lambda)`` satisfy ``Z V = U sqrt(n)``, so
projecting a training sample reproduces its score, and a new patient is projected with the same
formula (:class:`genoflow.features.spec.FeatureSpec`). With the randomized method's Ritz pairs the
projection reproduces the scores up to the pairs' residual (measured in decision 0014).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoflow.genotypes import BLOCK_BYTES, MISSING, arrow_batch_conf, rows_per_block, stack_dosages

__all__ = ["Pca", "METHODS", "choose_method", "standardise", "gram_block", "pca_from_gram", "randomized_pca",
           "spark_gram", "spark_randomized_pca", "spark_loadings", "collect_loadings"]

# Bytes of one row band of a partial Gram matrix: the unit that Spark serialises, shuffles and sends
# to the driver (the JVM holds a record whole).
_BAND_BYTES = 32 << 20

METHODS = ("auto", "exact", "randomized")
# auto: the exact Gram path up to this many samples, the randomized one above (decision 0014: measured
# on this repository's 2-core machine, where their CPU time is equal at 2k samples and the exact one doubles at 4k).
EXACT_MAX_SAMPLES = 2000
OVERSAMPLING = 10  # columns per block: k + 10 (Halko et al. 2011, section 4.2; plink2 approx: 2k)
PASSES = 10  # over the variants (decision 0014: |r| >= 0.9999 with the exact top 10 PCs of ooa at 2k-8k)


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


def choose_method(method: str, n_samples: int) -> str:
    """``exact`` or ``randomized``: ``method`` itself, or for ``auto`` by the number of samples."""
    if method not in METHODS:
        raise ValueError(f"pca method: expected one of {list(METHODS)}, got {method!r}")
    if method != "auto":
        return method
    return "exact" if n_samples <= EXACT_MAX_SAMPLES else "randomized"


def _check(n: int, n_variants: int, k: int) -> None:
    if not 1 <= k < n:
        raise ValueError(f"pca: need 1 <= components < samples ({n}), got {k}")
    if n_variants < 1:
        raise ValueError("pca: no variants to build the relationship matrix from")


def _top(values: np.ndarray, vectors: np.ndarray, n_variants: int, k: int) -> Pca:
    """The ``k`` largest eigenpairs of ``Z'Z`` as a :class:`Pca`, largest first.

    Eigenvector signs are fixed so that each column's largest-magnitude entry is positive
    (eigenvectors have no intrinsic sign; this makes reruns identical, and both methods agree).
    """
    top = np.argsort(values)[::-1][:k]
    values, vectors = values[top] / n_variants, vectors[:, top]
    flip = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(k)])
    return Pca(values, vectors * flip * np.sqrt(vectors.shape[0]), int(n_variants))


def pca_from_gram(gram: np.ndarray, n_variants: int, k: int) -> Pca:
    """Top ``k`` components from the summed ``Z'Z`` (n, n) over ``n_variants`` variants."""
    from scipy.linalg import eigh

    n = gram.shape[0]
    _check(n, n_variants, k)
    # Only the top k eigenpairs (LAPACK's syevr over an index range): the full set costs several
    # times more at thousands of samples.
    values, vectors = eigh(gram, subset_by_index=[n - k, n - 1])
    return _top(values, vectors, n_variants, k)


def randomized_pca(product, n: int, n_variants: int, k: int, *, oversampling: int = OVERSAMPLING,
                   passes: int = PASSES, seed: int = 0) -> Pca:
    """Top ``k`` components by a randomized block Krylov method, from products with ``Z'Z``.

    A seeded Gaussian block ``Q_0`` (n, l) with ``l = k + oversampling`` columns; pass ``j`` computes
    ``W_j = Z'Z Q_j``, orthogonalises it against the blocks so far and orthonormalises it into
    ``Q_{j+1}``. The blocks span the Krylov space ``[Q_0, AQ_0, A²Q_0, ...]`` (``A = Z'Z``), which
    holds the top eigenvectors far better than ``A^j Q_0`` alone (subspace iteration needed about
    three times the products for the same accuracy, decision 0014); the eigenpairs of ``Q'A Q``,
    whose columns are ``Q' W_j``, are the Rayleigh-Ritz approximations, with no further pass.
    Memory: the basis and the products, 2 x n x l x passes.

    Parameters
    ----------
    product : callable
        ``product(q)`` returns ``Z'(Z q)`` (n, l) for an (n, l) float64 ``q``: one pass over the variants.
    n, n_variants : int
        Samples and variants (``M``) of ``Z``.
    k : int
        Components.
    oversampling : int
        Extra columns per block (at most n in all).
    passes : int
        Calls of ``product``, at least 1 (fewer when the basis would outgrow the n samples).
    seed : int
        Of the Gaussian start: equal seeds and data give equal components.
    """
    _check(n, n_variants, k)
    if passes < 1:
        raise ValueError(f"pca: the randomized method needs passes >= 1, got {passes}")
    width = min(n, k + max(0, int(oversampling)))
    passes = max(1, min(int(passes), n // width))  # an orthonormal basis has at most n columns
    basis = [np.linalg.qr(np.random.default_rng(seed).standard_normal((n, width)))[0]]
    products = []
    for j in range(passes):
        w = product(basis[-1])
        products.append(w)
        if j < passes - 1:
            block = _extend(np.hstack(basis), w)
            if block.shape[1] == 0:  # the basis spans an invariant subspace: Rayleigh-Ritz is exact already
                break
            basis.append(block)
    q = np.hstack(basis)
    projected = q.T @ np.hstack(products)  # (L, L), L = width x passes: Q'AQ
    values, vectors = np.linalg.eigh((projected + projected.T) / 2)
    return _top(values, q @ vectors, n_variants, k)


def _extend(q: np.ndarray, w: np.ndarray, tolerance: float = 1e-10) -> np.ndarray:
    """An orthonormal block spanning the part of ``w`` outside ``span(q)`` (q orthonormal); it may have
    fewer columns than ``w``, or none.

    Directions of ``w`` that lie inside ``span(q)`` to ``tolerance`` (relative to ``w``'s largest column)
    are dropped: what is left of them after the projection is rounding noise, and normalising noise gives
    directions that are not orthogonal to ``q``. That happens whenever the relationship matrix has rank
    below the basis size (fewer pruned variants than ``k + oversampling`` times the passes): kept, those
    columns made ``Q`` non-orthonormal and the eigenvalues several times too large.
    """
    scale = float(np.linalg.norm(w, axis=0).max(initial=0.0))
    # Twice (classical Gram-Schmidt with reorthogonalisation): once loses orthogonality in floating
    # point as soon as w lies mostly inside span(q), which is exactly what converging blocks do.
    for _ in range(2):
        w = w - q @ (q.T @ w)
    u, singular, _ = np.linalg.svd(w, full_matrices=False)
    return u[:, singular > tolerance * scale] if scale > 0 else u[:, :0]


def loadings(dosages: np.ndarray, alt_freq: np.ndarray, pca: Pca) -> np.ndarray:
    """Variant loadings ``V`` (m, k) of a block: ``z @ scores / (M lambda)``, so that ``Z'V = scores``."""
    z = standardise(dosages, alt_freq)
    return z @ pca.scores / (pca.n_variants * pca.eigenvalues)


# --------------------------------------------------------------------------- Spark


def _blocks(rows, sample_index: np.ndarray, budget: int = BLOCK_BYTES):
    """(dosages (m, n) int8, alt_freq (m,)) blocks from an iterator of Rows (dosages, alt_af); a block
    is as many variants as fit ``budget`` bytes once standardised (float64)."""
    size = rows_per_block(len(sample_index), 8, budget)
    packed, freq = [], []
    for row in rows:
        packed.append(row["dosages"])
        freq.append(row["alt_af"])
        if len(packed) == size:
            yield stack_dosages(packed, sample_index), np.asarray(freq)
            packed, freq = [], []
    if packed:
        yield stack_dosages(packed, sample_index), np.asarray(freq)


def _per_core(rdd):
    """``rdd`` coalesced to at most one partition per core (no shuffle)."""
    return rdd.coalesce(max(1, min(rdd.getNumPartitions(), rdd.context.defaultParallelism)))


def spark_gram(variants, sample_index: np.ndarray, budget: int = BLOCK_BYTES) -> tuple[np.ndarray, int]:
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
        for block, freq in _blocks(rows, index, budget):
            gram += gram_block(block, freq)
            count += block.shape[0]
        for start in range(0, n, band):
            yield start, (gram[start : start + band].copy(), count)

    def add(a, b):
        return a[0] + b[0], a[1] + b[1]

    n_bands = -(-n // band)
    gram, count = np.zeros((n, n)), 0
    # One partial per core is all the parallelism there is; each further partition adds n² to the shuffle.
    variant_rows = _per_core(variants.select("dosages", "alt_af").rdd)
    summed = variant_rows.mapPartitions(partial).reduceByKey(add, n_bands)
    for start, (band_rows, total) in summed.toLocalIterator():
        gram[start : start + band_rows.shape[0]] = band_rows
        count = total  # every band carries the variant count of all partitions
    return gram, count


def spark_randomized_pca(variants, sample_index: np.ndarray, k: int, *, oversampling: int = OVERSAMPLING,
                         passes: int = PASSES, seed: int = 0, budget: int = BLOCK_BYTES) -> Pca:
    """Spark: :func:`randomized_pca` over the rows of ``variants`` (dosages, alt_af; cache it: it is read
    ``passes`` times).

    Each pass broadcasts ``Q`` (n x l), every partition (one per core) stacks its rows into blocks and
    sums their ``Z_b'(Z_b Q)`` into one (n, l) partial, and ``treeReduce`` adds the partials: no genotype
    and no n x n matrix reaches the driver or a worker. The stacked int8 blocks are not persisted
    between passes: over the cached rows that was no faster (decision 0014) and held the genotypes twice.
    """
    index = np.asarray(sample_index, dtype=np.int64)
    context = variants.sparkSession.sparkContext
    rows = _per_core(variants.select("dosages", "alt_af").rdd)

    def product(q: np.ndarray) -> np.ndarray:
        shared = context.broadcast(q)
        try:
            return rows.mapPartitions(
                lambda part: [_products(_blocks(part, index, budget), shared.value)]).treeReduce(np.add)
        finally:
            shared.destroy()

    return randomized_pca(product, index.size, variants.count(), k, oversampling=oversampling, passes=passes,
                          seed=seed)


def _products(blocks, q: np.ndarray) -> np.ndarray:
    """``sum_b Z_b'(Z_b q)`` over a partition's blocks, shape (n, l)."""
    total = np.zeros_like(q)
    for dosages, freq in blocks:
        z = standardise(dosages, freq)
        total += z.T @ (z @ q)
    return total


def collect_loadings(variants, sample_index: np.ndarray, pca: Pca, budget: int = BLOCK_BYTES):
    """:func:`spark_loadings` collected to pandas, sorted by variant, with Arrow batches sized by
    :func:`genoflow.genotypes.rows_per_block` (the default 10,000 rows are 8 GB of float64 at 100k samples)."""
    from genoflow.spark import session_conf

    # Read when the query runs, so around the action; 8 bytes: the batch becomes float64 in `loadings`.
    with session_conf(variants.sparkSession, arrow_batch_conf(len(sample_index), 8, budget)):
        rows = spark_loadings(variants, sample_index, pca).toPandas()
    return rows.sort_values(["contig", "pos", "ref", "alt"], ignore_index=True)


def spark_loadings(variants, sample_index: np.ndarray, pca: Pca):
    """Spark: per-variant loadings; rows (contig, pos, ref, alt, alt_af, loadings array<double>).

    Lazy: run its action under :func:`collect_loadings`' Arrow batch size, or batches are 10,000 rows."""
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
