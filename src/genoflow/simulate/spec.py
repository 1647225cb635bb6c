"""The parameters of a simulated cohort, with their defaults written once.

:data:`DEMO` is the demo cohort's spec: the defaults of :func:`genoflow.simulate.make_demo_cohort`,
of :func:`genoflow.simulate.make_cohort_batches` (which must draw from the same cohort) and of
``genoflow demo-data``. :data:`OOA` is the larger three-population cohort of
:func:`genoflow.simulate.ooa.make_ooa_cohort`: a longer region (about 18,000 SNVs per Mb) and more causal
variants on purpose, so it differs from :data:`DEMO` by those fields only;
:func:`genoflow.simulate.biobank.make_biobank_cohort` takes its trait fields and contig, with a
biobank's size and region of its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["CohortSpec", "DEMO", "OOA"]


@dataclass(frozen=True)
class CohortSpec:
    """What fixes a simulated cohort (the field order is truth.json's ``parameters`` order).

    Attributes
    ----------
    n_patients : int
        Diploid patients (VCF samples ``PT00001``...).
    sequence_length : int
        Length of the simulated contig in bp.
    seed : int
        Seed of every random stream; the same seed gives byte-identical files.
    heritability : float
        Variance of the disease genetic value on the liability scale (0 <= h2 < 1).
    prevalence : float
        Fraction of cases (disease_status = 1).
    n_causal : int
        Disease causal variants, drawn among common ones (MAF >= 5 %).
    reads_per_patient, read_length, target_length : int
        Targeted reads per patient, their length and the targeted region's length.
    missing_rate : float
        Probability that a VCF genotype is written as missing (``./.``).
    contig : str
        Contig name in the VCF, FASTA and GFF.
    """

    n_patients: int = 1000
    sequence_length: int = 2_000_000
    seed: int = 1
    heritability: float = 0.5
    prevalence: float = 0.3
    n_causal: int = 20
    reads_per_patient: int = 200
    read_length: int = 100
    target_length: int = 2_000
    missing_rate: float = 0.005
    contig: str = "chr22"

    def check(self) -> None:
        """Raise ValueError naming the first parameter that cannot give a valid cohort."""
        checks = [
            (0 < self.seed < 2**32, "seed must be in [1, 2**32) (msprime's range)"),
            (self.n_patients >= 2, "n_patients must be >= 2"),
            (self.sequence_length >= 1000, "sequence_length must be >= 1000"),
            (0.0 <= self.heritability < 1.0, "heritability must be in [0, 1)"),
            (0.0 < self.prevalence < 1.0, "prevalence must be in (0, 1)"),
            (self.n_causal >= 0, "n_causal must be >= 0"),
            (self.reads_per_patient >= 0, "reads_per_patient must be >= 0"),
            (1 <= self.read_length <= self.target_length, "need 1 <= read_length <= target_length"),
            (self.target_length <= self.sequence_length, "target_length must be <= sequence_length"),
            (0.0 <= self.missing_rate < 1.0, "missing_rate must be in [0, 1)"),
            (bool(self.contig) and not any(c.isspace() for c in self.contig), "contig must be a non-empty word"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def as_params(self) -> dict:
        """The fields as a dict, in declaration order (what truth.json records as ``parameters``)."""
        return dataclasses.asdict(self)


DEMO = CohortSpec()
OOA = dataclasses.replace(DEMO, n_patients=2000, sequence_length=10_000_000, n_causal=50, contig="chr20")
