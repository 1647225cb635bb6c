"""SNV genotype accuracy of a called VCF against a truth VCF, counted at genotype level as hap.py/vcfeval count.

Records are split into biallelic SNVs, matched by (contig, pos, ref, alt), and compared sample by sample
(samples matched by name) on the number of ALT copies:

- TP: a non-reference truth genotype called with the same genotype;
- FN: a non-reference truth genotype not called so (missed, ``./.``, or another genotype);
- FP: a non-reference called genotype that is not the truth's (another genotype, or no variant in the truth).

A het called hom-alt is therefore one FN and one FP, as in hap.py. A truth genotype that is itself ``./.``
says nothing and is left out (``n_truth_missing``). Indels, MNPs and symbolic alleles are left out of both
files. Both VCFs are read line by line (plain, gzip or bgzip), only their GT field; the calls at truth
sites are kept in memory, which suits the panels this is for (a few hundred kb by a few hundred samples).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import numpy as np

from genoflow.errors import InputError
from genoflow.genotypes import MISSING as _MISSING

__all__ = ["genotype_accuracy", "iter_snv_dosages", "wilson_interval"]

N_BOOTSTRAP = 1_000
_BASES = frozenset("ACGTN")
_REGION = re.compile(r"^(?P<contig>[^:]+)(?::(?P<lo>[\d,]+)(?:-(?P<hi>[\d,]+))?)?$")


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a binomial proportion (scipy's); (nan, nan) with no trials.

    >>> [round(x, 4) for x in wilson_interval(95, 100)]
    [0.8882, 0.9785]
    """
    from scipy.stats import binomtest

    if trials == 0:
        return float("nan"), float("nan")
    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def _parse_region(region: str | None) -> tuple[str, int, float] | None:
    if region is None:
        return None
    match = _REGION.match(region.strip())
    if not match:
        raise ValueError(f"genotype_accuracy: region {region!r}: expected 'contig', 'contig:pos' or 'contig:lo-hi'")
    lo = int(match["lo"].replace(",", "")) if match["lo"] else 1
    hi = int(match["hi"].replace(",", "")) if match["hi"] else (lo if match["lo"] else float("inf"))
    return match["contig"], lo, hi


def _local_path(uri) -> str:
    parts = urlsplit(str(uri))
    return unquote(parts.path) if parts.scheme == "file" else str(uri)


def iter_snv_dosages(vcf, *, region: str | None = None) -> Iterator[list[str] | tuple[tuple, np.ndarray]]:
    """The samples of ``vcf``, then its biallelic SNVs: ((contig, pos, ref, alt), ALT copies per sample).

    The first item is the list of sample names; each next one is a variant key and an int8 array of shape
    (n_samples,): 0, 1 or 2 copies of that ALT (a multiallelic record gives one key per SNV ALT), -1 where
    the GT is missing or has a missing allele. ``region`` ('chr1', 'chr1:1000-2000', 1-based inclusive)
    keeps the records whose POS is inside.

    Raises
    ------
    InputError
        On a record line whose columns do not match the samples, a POS that is not a number, no GT field,
        or a GT that is not allele numbers.
    """
    from genoflow.io.vcf import iter_vcf_lines

    source, where = str(vcf), _parse_region(region)
    cache: dict[str, tuple] = {}
    samples = None
    with open(_local_path(vcf), "rb") as stream:
        for n, line in enumerate(iter_vcf_lines(stream, source), start=1):
            if line.startswith("##") or not line:
                continue
            fields = line.split("\t")
            if line.startswith("#CHROM"):
                samples = fields[9:]
                yield samples
                continue
            if samples is None:
                raise InputError(source, "a record comes before the #CHROM header line", line=n)
            if len(fields) != 9 + len(samples):
                raise InputError(source, f"expected {9 + len(samples)} tab-separated columns, found {len(fields)}",
                                 line=n)
            if not fields[1].isdigit():
                raise InputError(source, f"POS {fields[1]!r} is not a whole number", line=n)
            contig, pos, ref, alts = fields[0], int(fields[1]), fields[3].upper(), fields[4].upper().split(",")
            if len(ref) != 1 or (where and (contig != where[0] or not where[1] <= pos <= where[2])):
                continue
            snvs = [(i, alt) for i, alt in enumerate(alts, start=1) if len(alt) == 1 and alt in _BASES and alt != ref]
            if not snvs:
                continue
            calls = _gt_alleles(fields[8], fields[9:], cache, source, n)
            for index, alt in snvs:
                copies = (calls == index).sum(axis=1).astype(np.int8)
                copies[(calls == _MISSING).any(axis=1)] = _MISSING
                yield (contig, pos, ref, alt), copies


def _gt_alleles(fmt: str, cells: list[str], cache: dict, source: str, line: int) -> np.ndarray:
    """Allele numbers (n_samples, 2), -1 for '.'; a haploid call repeats its allele (hemizygous: two copies)."""
    keys = fmt.split(":")
    if "GT" not in keys:
        raise InputError(source, f"the record has no GT field (FORMAT {fmt})", line=line)
    at = keys.index("GT")
    out = np.empty((len(cells), 2), dtype=np.int64)
    for s, cell in enumerate(cells):
        gt = cell.split(":", at + 1)[at] if at else cell.partition(":")[0]
        parsed = cache.get(gt)
        if parsed is None:
            parts = re.split(r"[/|]", gt)
            if len(parts) > 2 or not all(p == "." or p.isdigit() for p in parts):
                raise InputError(source, f"sample {s + 1}: GT {gt!r} is not one or two allele numbers", line=line)
            alleles = [_MISSING if p == "." else int(p) for p in parts]
            parsed = cache[gt] = (alleles * 2)[:2]
        out[s] = parsed
    return out


def _counts(truth: np.ndarray, called: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample counts, each shape (n_samples,), for truth and called ALT copies of shape (n_variants, n_samples)."""
    known = truth != _MISSING
    match = known & (called == truth)
    counts = {"n_truth_missing": (~known).sum(axis=0)}
    for name, cls in (("het", 1), ("homalt", 2)):
        counts[f"tp_{name}"] = (match & (truth == cls)).sum(axis=0)
        counts[f"fn_{name}"] = (known & (truth == cls) & ~match).sum(axis=0)
        counts[f"fp_{name}"] = (known & (called == cls) & ~match).sum(axis=0)
    for kind in ("tp", "fn", "fp"):
        counts[kind] = counts[f"{kind}_het"] + counts[f"{kind}_homalt"]
    return counts


def _rates(c: dict, suffix: str = "") -> dict:
    tp, fp, fn = (int(c[f"{k}{suffix}"]) for k in ("tp", "fp", "fn"))
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1,
            "precision_ci": wilson_interval(tp, tp + fp), "recall_ci": wilson_interval(tp, tp + fn)}


def _report(counts: dict) -> dict:
    """Rates of all genotypes, and of het and hom-alt ones."""
    return _rates(counts) | {cls: _rates(counts, f"_{cls}") for cls in ("het", "homalt")}


def _f1_bootstrap(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """A 95% percentile interval of the total F1, resampling samples with replacement."""
    if len(tp) < 2:
        return float("nan"), float("nan")
    picks = np.random.default_rng(seed).integers(0, len(tp), size=(N_BOOTSTRAP, len(tp)))
    t, p, n = tp[picks].sum(axis=1), fp[picks].sum(axis=1), fn[picks].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * t / (2 * t + p + n)
    f1 = f1[np.isfinite(f1)]
    return (float(np.quantile(f1, 0.025)), float(np.quantile(f1, 0.975))) if len(f1) else (float("nan"),) * 2


def _read(vcf, region) -> tuple[list[str], dict[tuple, np.ndarray]]:
    records = iter_snv_dosages(vcf, region=region)
    names = next(records, None)
    if names is None:
        raise InputError(str(vcf), "no #CHROM header line (not a VCF, or empty)")
    variants = {}
    for key, copies in records:
        if key in variants:
            raise InputError(str(vcf), f"SNV {key[0]}:{key[1]} {key[2]}>{key[3]} appears twice", record=str(key[1]))
        variants[key] = copies
    return names, variants


def genotype_accuracy(truth_vcf, called_vcf, *, region: str | None = None, samples=None) -> dict:
    """SNV genotype precision, recall and F1 of ``called_vcf`` against ``truth_vcf``, in total and per sample.

    Parameters
    ----------
    truth_vcf, called_vcf : str or path
        Local paths or ``file://`` URIs; plain, gzip or bgzip VCF with a GT field.
    region : str, optional
        ``contig``, ``contig:lo-hi`` (1-based, inclusive): only SNVs whose POS is inside count.
    samples : sequence of str, optional
        The samples to compare; default, every sample in both files.

    Returns
    -------
    dict
        ``total``: tp, fp, fn, precision, recall, f1, precision_ci and recall_ci (95% Wilson intervals over
        genotypes), f1_ci (95% bootstrap interval over samples), and ``het`` / ``homalt`` with the same
        rates for truth (recall) and called (precision) genotypes of one or two ALT copies;
        ``per_sample``: {sample: the same without f1_ci}; ``samples`` (compared, in the truth's order);
        ``n_sites`` (truth SNVs), ``n_truth_missing`` (genotypes left out: ./. in the truth).

    Raises
    ------
    InputError
        If a file is not a readable VCF, a sample asked for is missing from a file, or the files share no
        sample.

    Examples
    --------
    >>> import tempfile, os
    >>> head = "##fileformat=VCFv4.3\\n#CHROM\\tPOS\\tID\\tREF\\tALT\\tQUAL\\tFILTER\\tINFO\\tFORMAT\\tS1\\n"
    >>> folder = tempfile.mkdtemp()
    >>> for name, gt in (("truth", "0/1"), ("called", "1/1")):
    ...     _ = open(os.path.join(folder, name), "w").write(head + f"1\\t10\\t.\\tA\\tG\\t.\\t.\\t.\\tGT\\t{gt}\\n")
    >>> result = genotype_accuracy(os.path.join(folder, "truth"), os.path.join(folder, "called"))
    >>> {k: result["total"][k] for k in ("tp", "fp", "fn")}
    {'tp': 0, 'fp': 1, 'fn': 1}
    """
    truth_names, truth = _read(truth_vcf, region)
    called_names, called = _read(called_vcf, region)
    names = _compared_samples(truth_vcf, truth_names, called_vcf, called_names, samples)
    t_cols = [truth_names.index(s) for s in names]
    c_cols = [called_names.index(s) for s in names]
    keys = list(truth) + [k for k in called if k not in truth]
    absent = np.zeros(len(names), np.int8)  # no record: no ALT copy
    t = np.array([truth[k][t_cols] if k in truth else absent for k in keys], np.int8).reshape(len(keys), len(names))
    c = np.array([called[k][c_cols] if k in called else absent for k in keys], np.int8).reshape(len(keys), len(names))
    counts = _counts(t, c)
    total = _report({k: v.sum() for k, v in counts.items()})
    total["f1_ci"] = _f1_bootstrap(counts["tp"], counts["fp"], counts["fn"])
    per_sample = {s: _report({k: v[i] for k, v in counts.items()}) for i, s in enumerate(names)}
    return {"total": total, "per_sample": per_sample, "samples": names, "n_sites": len(truth),
            "n_truth_missing": int(counts["n_truth_missing"].sum())}


def _compared_samples(truth_vcf, truth_names, called_vcf, called_names, samples) -> list[str]:
    if samples is not None:
        for vcf, names in ((truth_vcf, truth_names), (called_vcf, called_names)):
            absent = [s for s in samples if s not in names]
            if absent:
                raise InputError(str(vcf), f"sample(s) {absent[:5]} asked for are not in the file", record=absent[0])
        return list(samples)
    names = [s for s in truth_names if s in set(called_names)]
    if not names:
        raise InputError(str(called_vcf), f"no sample in common with the truth {truth_vcf} "
                                          f"(truth: {truth_names[:3]}..., called: {called_names[:3]}...)")
    return names

