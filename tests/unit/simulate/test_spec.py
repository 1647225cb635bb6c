"""CohortSpec: the simulated cohort's defaults, written once and read by every generator and the CLI."""

import dataclasses
import inspect

import pytest

from genoflow.cli import build_parser
from genoflow.simulate.batches import make_cohort_batches
from genoflow.simulate.biobank import make_biobank_cohort
from genoflow.simulate.cohort import make_demo_cohort
from genoflow.simulate.ooa import make_ooa_cohort
from genoflow.simulate.spec import DEMO, OOA, CohortSpec


def _defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_generators_and_cli_default_to_the_demo_spec():
    fields = DEMO.as_params()
    assert {k: _defaults(make_demo_cohort)[k] for k in fields} == fields
    batches = _defaults(make_cohort_batches)
    assert {k: batches["n_reference" if k == "n_patients" else k] for k in fields} == fields
    args = vars(build_parser().parse_args(["demo-data"]))
    assert {k: args[k] for k in ("n_patients", "sequence_length", "seed", "heritability", "prevalence",
                                 "n_causal", "reads_per_patient")} == {k: fields[k] for k in (
                                     "n_patients", "sequence_length", "seed", "heritability", "prevalence",
                                     "n_causal", "reads_per_patient")}


def test_ooa_differs_from_the_demo_in_its_size_causal_count_and_contig_only():
    ooa = _defaults(make_ooa_cohort)
    assert {k: ooa[k] for k in ooa if k in OOA.as_params()} == {k: v for k, v in OOA.as_params().items() if k in ooa}
    changed = {f.name for f in dataclasses.fields(CohortSpec) if getattr(OOA, f.name) != getattr(DEMO, f.name)}
    assert changed == {"n_patients", "sequence_length", "n_causal", "contig"}
    biobank = _defaults(make_biobank_cohort)  # the OOA model at biobank scale: its own size and region only
    assert {k: biobank[k] for k in ("seed", "heritability", "prevalence", "n_causal", "missing_rate", "contig")} == \
        {k: getattr(OOA, k) for k in ("seed", "heritability", "prevalence", "n_causal", "missing_rate", "contig")}


def test_params_keep_truth_json_order():
    assert list(DEMO.as_params()) == ["n_patients", "sequence_length", "seed", "heritability", "prevalence",
                                      "n_causal", "reads_per_patient", "read_length", "target_length",
                                      "missing_rate", "contig"]


@pytest.mark.parametrize(("change", "message"), [
    ({"prevalence": 1.0}, "prevalence must be in"),
    ({"read_length": 5000}, "read_length <= target_length"),
    ({"contig": "chr 1"}, "contig must be a non-empty word"),
])
def test_check_names_the_bad_parameter(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DEMO, **change).check()
