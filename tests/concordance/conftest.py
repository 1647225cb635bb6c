"""Fixtures of the concordance tests: one small structured cohort that plink2 and genoflow both read.

``concordance_cohort`` (session-scoped, ~2 s) is a :class:`tests.concordance.cohort.ConcordanceCohort`:
the files (VCF.gz, plink2 pfile, phenotype / covariate / sex files, FASTA) and the same data as numpy
arrays and pandas tables. Run plink2 on it with :func:`run_plink2` (raises with plink2's log on
failure) in a per-test folder, never in ``cohort.root`` (shared by every test).
"""

from __future__ import annotations

import shutil

import pytest

from tests.concordance.cohort import ConcordanceCohort, make_concordance_cohort, run_plink2

__all__ = ["run_plink2"]


@pytest.fixture(scope="session")
def concordance_cohort(tmp_path_factory) -> ConcordanceCohort:
    if shutil.which("plink2") is None:
        pytest.fail("plink2 is not installed: `make system-deps` installs Debian's plink2")
    return make_concordance_cohort(tmp_path_factory.mktemp("concordance-cohort"))
