"""A small structured cohort that plink2 and genoflow both read, for concordance tests.

:func:`make_concordance_cohort` simulates, with msprime, diploid samples from three island
populations exchanging migrants (so principal components separate them), over three autosomes
and an X chromosome (one haplotype per male, written as a homozygous diploid call, as callers with a
fixed ploidy of 2 do), then makes quality control non-trivial on purpose:

- sporadic missing genotypes everywhere, a few variants with a high missing rate (``--geno``);
- a few samples with a high missing rate (``--mind``);
- a few variants whose heterozygotes were turned homozygous or homozygotes heterozygous
  (``--hwe``);
- a contaminated-looking sample (excess heterozygosity) and an inbred-looking one (``--het``);
- two samples whose reported sex disagrees with their X genotypes (``--check-sex``);
- phenotypes from a few causal variants, sex, age and the population (so that ancestry
  confounds the association unless principal components are covariates): a quantitative trait and
  a case/control trait, each missing for a few samples.

Files written under ``out_dir`` (plink2 reads the first, genoflow the arrays)::

    cohort.vcf.gz (+ .tbi)   bgzip VCF 4.2, IDs ``<contig>:<pos>:<ref>:<alt>``, no FORMAT but GT
    reference.fa             a FASTA whose bases agree with every REF (for the preprocess REF check)
    sex.txt                  #IID SEX (1 male, 2 female; the *reported* sex)
    pheno.txt                #IID QT CC (CC 1 control, 2 case; NA missing)
    covar.txt                #IID SEX AGE (SEX numeric 1/2 as in the .psam)
    cohort.pgen/.pvar/.psam  plink2 --make-pgen of the VCF with the reported sex

The arrays in the returned :class:`ConcordanceCohort` hold exactly what the VCF holds.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import msprime
import numpy as np
import pandas as pd

__all__ = ["ConcordanceCohort", "make_concordance_cohort", "run_plink2", "PlinkError"]

AUTOSOMES = ("1", "2", "3")
X_CONTIG = "X"
POPULATIONS = ("A", "B", "C")
# X sites start past the pseudoautosomal region PAR1 (ends at 2,699,520 on GRCh37, 2,781,479 on GRCh38),
# where males are diploid; plink2 would warn and treat calls there differently.
X_OFFSET = 3_000_000
_BASES = np.array(list("ACGT"))


class PlinkError(RuntimeError):
    """plink2 (or plink 1.9) exited non-zero; the message carries the command and its log."""


@dataclass(frozen=True)
class ConcordanceCohort:
    """The simulated cohort: file paths for plink2 and arrays for genoflow's kernels.

    Attributes
    ----------
    root : Path
        Folder of the files listed in the module docstring.
    vcf, reference, pfile_prefix, pheno_file, covar_file, sex_file : Path
        ``pfile_prefix`` is ``root / "cohort"`` (pass as ``--pfile``).
    dosages : numpy.ndarray, shape (n_variants, n_samples), int8
        ALT dosages 0/1/2 (males 0/2 on X), ``-1`` missing, in VCF order: exactly the VCF's calls.
    variants : pandas.DataFrame
        One row per variant in VCF order: contig, pos (1-based), id, ref, alt.
    samples : pandas.DataFrame
        One row per sample in VCF column order: iid, population, sex (1 male, 2 female, the
        reported sex), genetic_sex, age (float), qt (float, NaN missing), cc (float 0/1, NaN
        missing), and the injected problems: high_missing, het_excess, het_deficit (bool).
    hwe_violators, high_missing_variants : list of str
        IDs of the variants made to violate HWE / to have a high missing rate.
    causal : list of str
        IDs of the causal variants of both traits.
    """

    root: Path
    vcf: Path
    reference: Path
    pfile_prefix: Path
    pheno_file: Path
    covar_file: Path
    sex_file: Path
    dosages: np.ndarray
    variants: pd.DataFrame
    samples: pd.DataFrame
    hwe_violators: list
    high_missing_variants: list
    causal: list

    @property
    def autosomal(self) -> np.ndarray:
        """Boolean mask, shape (n_variants,), of the autosomal variants."""
        return (self.variants["contig"] != X_CONTIG).to_numpy()


def run_plink2(*args, cwd, executable: str = "plink2") -> Path:
    """Run ``plink2 <args>`` in ``cwd``; raise :class:`PlinkError` with its log when it fails.

    ``--out`` defaults to ``plink2`` (so the log is ``cwd/plink2.log``) when not among the args.
    Returns the log path. ``executable="plink1.9"`` runs plink 1.9 the same way.
    """
    args = [str(a) for a in args]
    if "--out" not in args:
        args += ["--out", "plink2"]
    out = Path(cwd) / (args[args.index("--out") + 1] + ".log")
    proc = subprocess.run([executable, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        log = out.read_text() if out.exists() else ""
        raise PlinkError(
            f"{executable} {' '.join(args)} exited {proc.returncode} in {cwd}\n"
            f"--- log ---\n{log}\n--- stderr ---\n{proc.stderr}"
        )
    return out


def make_concordance_cohort(
    out_dir: Path,
    *,
    n_per_population: int = 200,
    autosome_length: float = 400_000,
    x_length: float = 200_000,
    migration_rate: float = 2e-4,
    x_migration_rate: float = 2e-3,
    x_mutation_rate: float = 5e-8,
    x_loci: int = 100,
    seed: int = 20261125,
) -> ConcordanceCohort:
    """Simulate the cohort into ``out_dir`` (created) and return its files and arrays (seconds)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = n_per_population * len(POPULATIONS)
    population = np.repeat(np.arange(len(POPULATIONS)), n_per_population)
    genetic_sex = rng.choice([1, 2], size=n)  # 1 male, 2 female

    blocks, variant_rows, reference = [], [], {}
    for k, contig in enumerate((*AUTOSOMES, X_CONTIG)):
        length = x_length if contig == X_CONTIG else autosome_length
        # X: more migration and mutation, and x_loci unlinked loci: a sex check needs many independent
        # common X sites (real arrays have thousands across 155 Mb); on one short, structured, linked
        # region the females' X inbreeding F would scatter past plink's 0.2 threshold.
        if contig == X_CONTIG:
            haplotypes, positions = _simulate_unlinked(n_per_population, length, x_loci, x_migration_rate,
                                                       x_mutation_rate, seed + k)
        else:
            haplotypes, positions = _simulate_haplotypes(n_per_population, length, migration_rate, 1e-8, seed + k)
        dosages = _diploid_dosages(haplotypes, genetic_sex if contig == X_CONTIG else None)
        bases = _BASES[rng.integers(0, 4, size=int(length))]
        ref = bases[positions - 1]
        alt = _BASES[(np.searchsorted(_BASES, ref) + rng.integers(1, 4, size=ref.size)) % 4]
        offset = X_OFFSET if contig == X_CONTIG else 0
        positions = positions + offset
        reference[contig] = "N" * offset + "".join(bases)
        blocks.append(dosages)
        variant_rows.append(pd.DataFrame({"contig": contig, "pos": positions, "ref": ref, "alt": alt}))
    dosages = np.concatenate(blocks)
    variants = pd.concat(variant_rows, ignore_index=True)
    variants.insert(2, "id", variants["contig"] + ":" + variants["pos"].astype(str) + ":"
                    + variants["ref"] + ":" + variants["alt"])

    samples = pd.DataFrame({
        "iid": [f"S{i + 1:04d}" for i in range(n)],
        "population": np.asarray(POPULATIONS)[population],
        "genetic_sex": genetic_sex,
        "age": np.round(rng.normal(55, 10, size=n), 1),
    })
    is_x = (variants["contig"] == X_CONTIG).to_numpy()
    problems = _inject_qc_problems(dosages, is_x, genetic_sex, samples, rng)
    causal = _add_phenotypes(dosages, variants, samples, population, rng)
    return _write_files(out_dir, dosages, variants, samples, reference, problems, causal)


def _simulate_unlinked(n_per_population, length, n_loci, migration_rate, mutation_rate, seed):
    """``n_loci`` independent simulations side by side on one contig of ``length`` bp."""
    size = int(length) // n_loci
    parts = [_simulate_haplotypes(n_per_population, size, migration_rate, mutation_rate, seed + 100 + i)
             for i in range(n_loci)]
    return (np.concatenate([h for h, _ in parts]),
            np.concatenate([pos + i * size for i, (_, pos) in enumerate(parts)]))


def _simulate_haplotypes(n_per_population, length, migration_rate, mutation_rate, seed):
    """(haplotypes (n_sites, 2 n) int8, 1-based positions) of biallelic sites, samples pop by pop."""
    demography = msprime.Demography.island_model([5_000] * len(POPULATIONS), migration_rate=migration_rate)
    ts = msprime.sim_ancestry(
        samples={f"pop_{i}": n_per_population for i in range(len(POPULATIONS))},
        demography=demography, sequence_length=length, recombination_rate=1e-8, random_seed=seed,
    )
    ts = msprime.sim_mutations(ts, rate=mutation_rate, random_seed=seed, model=msprime.BinaryMutationModel())
    genotypes = ts.genotype_matrix().astype(np.int8)
    positions = ts.tables.sites.position.astype(np.int64) + 1
    keep = (genotypes.max(axis=1) == 1) & (genotypes.min(axis=1) == 0)
    return genotypes[keep], positions[keep]


def _diploid_dosages(haplotypes, sex_for_x):
    """Consecutive haplotype pairs are one individual; on X a male has his first haplotype twice."""
    dosages = haplotypes[:, 0::2] + haplotypes[:, 1::2]
    if sex_for_x is not None:
        dosages[:, sex_for_x == 1] = 2 * haplotypes[:, 0::2][:, sex_for_x == 1]
    return dosages.astype(np.int8)


def _inject_qc_problems(dosages, is_x, genetic_sex, samples, rng) -> dict:
    n_variants, n = dosages.shape
    auto = np.flatnonzero(~is_x)
    # Sporadic missingness (0.5 %), then a few bad samples and bad variants.
    dosages[rng.random(dosages.shape) < 0.005] = -1
    bad_samples = rng.choice(n, size=6, replace=False)
    for j, rate in zip(bad_samples, (0.03, 0.05, 0.08, 0.12, 0.2, 0.35), strict=True):
        dosages[rng.random(n_variants) < rate, j] = -1
    common = auto[(np.abs(dosages[auto].clip(0).mean(axis=1) - 1.0) < 0.6)]
    bad_variants = rng.choice(common, size=12, replace=False)
    for i, rate in zip(bad_variants, np.linspace(0.03, 0.3, 12), strict=True):
        dosages[i, rng.random(n) < rate] = -1

    # HWE: heterozygote deficit (hets -> homozygotes) and excess (homozygotes -> hets).
    candidates = np.setdiff1d(common, bad_variants)
    hwe = rng.choice(candidates, size=16, replace=False)
    for k, i in enumerate(hwe):
        row = dosages[i]
        if k % 2 == 0:
            het = np.flatnonzero(row == 1)
            flip = het[rng.random(het.size) < (0.3 + 0.04 * k)]
            row[flip] = rng.choice([0, 2], size=flip.size)
        else:
            hom = np.flatnonzero((row == 0) | (row == 2))
            row[hom[rng.random(hom.size) < (0.1 + 0.03 * k)]] = 1

    # Heterozygosity outliers among the remaining samples (autosomes only).
    others = np.setdiff1d(np.arange(n), bad_samples)
    het_excess, het_deficit = rng.choice(others, size=2, replace=False)
    col = dosages[auto, het_excess]
    hom = np.flatnonzero((col == 0) | (col == 2))
    col[hom[rng.random(hom.size) < 0.3]] = 1
    dosages[auto, het_excess] = col
    col = dosages[auto, het_deficit]
    het = np.flatnonzero(col == 1)
    flip = het[rng.random(het.size) < 0.9]
    col[flip] = rng.choice([0, 2], size=flip.size)
    dosages[auto, het_deficit] = col

    # Two reported sexes that disagree with the X genotypes.
    reported = genetic_sex.copy()
    swapped = rng.choice(np.setdiff1d(others, [het_excess, het_deficit]), size=2, replace=False)
    reported[swapped] = 3 - reported[swapped]
    samples["sex"] = reported
    samples["high_missing"] = np.isin(np.arange(n), bad_samples)
    samples["het_excess"] = np.arange(n) == het_excess
    samples["het_deficit"] = np.arange(n) == het_deficit
    samples["sex_swapped"] = np.isin(np.arange(n), swapped)
    return {"hwe": hwe, "high_missing_variants": bad_variants}


def _add_phenotypes(dosages, variants, samples, population, rng) -> np.ndarray:
    """QT and CC from 5 common autosomal causal variants + sex + age + population; returns their rows."""
    auto = np.flatnonzero((variants["contig"] != X_CONTIG).to_numpy())
    g = dosages[auto].astype(float)
    g[g < 0] = np.nan
    af = np.nanmean(g, axis=1) / 2
    common = auto[(af > 0.1) & (af < 0.9)]
    causal = np.sort(rng.choice(common, size=5, replace=False))
    gc = dosages[causal].astype(float)
    gc[gc < 0] = np.nan
    gc = np.where(np.isnan(gc), np.nanmean(gc, axis=1, keepdims=True), gc)
    effects = np.array([0.5, -0.45, 0.4, 0.55, -0.35])
    genetic = effects @ (gc - gc.mean(axis=1, keepdims=True))
    sex = samples["sex"].to_numpy()
    age = samples["age"].to_numpy()
    ancestry = np.array([0.0, 0.5, -0.4])[population]
    qt = genetic + 0.3 * (sex == 2) + 0.02 * (age - 55) + ancestry + rng.normal(0, 1, size=sex.size)
    eta = -0.8 + 1.5 * genetic + 0.4 * (sex == 2) + 0.03 * (age - 55) + 1.2 * ancestry
    cc = (rng.random(sex.size) < 1 / (1 + np.exp(-eta))).astype(float)
    qt[rng.choice(sex.size, size=5, replace=False)] = np.nan
    cc[rng.choice(sex.size, size=5, replace=False)] = np.nan
    samples["qt"] = qt
    samples["cc"] = cc
    return causal


def _write_files(out_dir, dosages, variants, samples, reference, problems, causal) -> ConcordanceCohort:
    vcf = out_dir / "cohort.vcf.gz"
    _write_vcf(vcf, dosages, variants, samples, {c: len(seq) for c, seq in reference.items()})
    fasta = out_dir / "reference.fa"
    with fasta.open("w") as fh:
        for contig, seq in reference.items():
            fh.write(f">{contig}\n")
            fh.writelines(seq[i : i + 80] + "\n" for i in range(0, len(seq), 80))
    iid = samples["iid"]
    sex_file, pheno_file, covar_file = out_dir / "sex.txt", out_dir / "pheno.txt", out_dir / "covar.txt"
    pd.DataFrame({"#IID": iid, "SEX": samples["sex"]}).to_csv(sex_file, sep="\t", index=False)
    pheno = pd.DataFrame({"#IID": iid, "QT": samples["qt"].round(6), "CC": samples["cc"] + 1})
    pheno.to_csv(pheno_file, sep="\t", index=False, na_rep="NA")
    pd.DataFrame({"#IID": iid, "SEX": samples["sex"], "AGE": samples["age"]}).to_csv(
        covar_file, sep="\t", index=False)
    samples["qt"] = pheno["QT"]  # the rounded values plink2 reads
    run_plink2("--vcf", vcf.name, "--update-sex", sex_file.name, "--make-pgen", "--out", "cohort", cwd=out_dir)
    ids = variants["id"].to_numpy()
    return ConcordanceCohort(
        root=out_dir, vcf=vcf, reference=fasta, pfile_prefix=out_dir / "cohort", pheno_file=pheno_file,
        covar_file=covar_file, sex_file=sex_file, dosages=dosages, variants=variants, samples=samples,
        hwe_violators=list(ids[problems["hwe"]]), high_missing_variants=list(ids[problems["high_missing_variants"]]),
        causal=list(ids[causal]),
    )


def _write_vcf(path: Path, dosages, variants, samples, contig_lengths) -> None:
    """Unphased diploid GT only. Vectorised: one string per genotype code."""
    diploid = np.array(["./.", "0/0", "0/1", "1/1"])
    header = [
        "##fileformat=VCFv4.2",
        "##source=tests.concordance.cohort (msprime)",
        *(f"##contig=<ID={c},length={len_}>" for c, len_ in contig_lengths.items()),
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples["iid"]),
    ]
    calls = diploid[dosages + 1]
    fixed = (variants["contig"] + "\t" + variants["pos"].astype(str) + "\t" + variants["id"] + "\t"
             + variants["ref"] + "\t" + variants["alt"] + "\t.\tPASS\t.\tGT\t").to_numpy()
    text = path.with_suffix("")
    with text.open("w") as fh:
        fh.write("\n".join(header) + "\n")
        for i in range(dosages.shape[0]):
            fh.write(fixed[i] + "\t".join(calls[i]) + "\n")
    subprocess.run(["bgzip", "-f", str(text)], check=True)
    subprocess.run(["tabix", "-f", "-p", "vcf", str(path)], check=True)

