"""The ``genoflow`` command line: demo data, dataset versions, run summaries, model lineage, storage gc."""

from __future__ import annotations

import argparse
import json
import sys

from genoflow.config import Settings

__all__ = ["main"]


def _demo_data(args) -> int:
    from genoflow.simulate import make_demo_cohort

    reads = {"reads_per_patient": args.reads_per_patient} if args.coverage is None else {
        "coverage": args.coverage, "target_length": args.panel_length, "read_length": args.read_length,
        "paired": args.paired}
    spec = {field: getattr(args, field) for field, _, _ in _SPEC_FLAGS if field != "reads_per_patient"}
    summary = make_demo_cohort(args.out, **spec, progress=True, **reads)
    print(json.dumps(summary, indent=2, default=str))
    return 0


# demo-data's flags for CohortSpec fields: (field, flag, help); the defaults are genoflow.simulate.spec.DEMO's.
_SPEC_FLAGS = (
    ("n_patients", "--patients", "number of patients"),
    ("sequence_length", "--sequence-length", "simulated region length in bp"),
    ("seed", "--seed", "random seed"),
    ("heritability", "--heritability", "liability-scale h2"),
    ("prevalence", "--prevalence", "disease prevalence"),
    ("n_causal", "--causal", "number of causal variants"),
    ("reads_per_patient", "--reads", "FASTQ reads per patient"),
)


def _add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    from genoflow.simulate.spec import DEMO

    for field, flag, text in _SPEC_FLAGS:
        default = getattr(DEMO, field)
        metavar = flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(flag, dest=field, type=type(default), default=default, metavar=metavar,
                            help=f"{text} (default: %(default)s)")


def _dataset_version(args) -> int:
    from genoflow.versioning import dvc_version

    print(dvc_version(Settings().home, args.target))
    return 0


def _run_key(args) -> int:
    from genoflow.config import load_params, run_key
    from genoflow.versioning import dvc_version

    settings = Settings()
    params = load_params(settings.params_file)
    print(run_key(dvc_version(settings.home, args.target), params))
    return 0


def _params_json(args) -> int:
    from genoflow.config import load_params

    print(json.dumps(load_params(Settings().params_file), sort_keys=True))
    return 0


def _promote(args) -> int:
    from genoflow.config import load_params
    from genoflow.registry import promote_pipeline_run

    settings = Settings()
    for d in promote_pipeline_run(args.run_key, load_params(settings.params_file),
                                  tracking_uri=settings.mlflow_tracking_uri,
                                  artifact_root=settings.mlflow_artifact_root):
        print(f"{d.model_name} v{d.version}: {'champion' if d.promoted else 'challenger'} ({d.reason})")
    return 0


def _summary(args) -> int:
    from genoflow.summary import print_summary

    return print_summary(Settings(), run_key=args.run_key)


def _lineage(args) -> int:
    from genoflow.registry.lineage import format_lineage, model_lineage

    settings = Settings()
    lineage = model_lineage(args.model, args.ref, tracking_uri=settings.mlflow_tracking_uri, home=settings.home,
                            target=args.target, remote=args.remote)
    print(json.dumps(lineage, indent=2) if args.json else format_lineage(lineage))
    return 0


def _dvc(args) -> int:
    from genoflow.dvc_remote import configure_remote, dvc_main

    configure_remote(Settings().home)
    return dvc_main(args.dvc_args)


def _gc(args) -> int:
    from genoflow.spark import get_spark
    from genoflow.storage import HadoopStorage
    from genoflow.storage.janitor import collect_garbage

    root = args.root or Settings().storage_root
    storage = HadoopStorage(get_spark("genoflow-gc", {"spark.master": "local[1]", "spark.ui.enabled": "false"}),
                            root)
    under = args.under or ["steps"]
    entries = collect_garbage(storage, older_than_s=args.older_than, under=under, dry_run=args.dry_run)
    for entry in entries:
        verb = ("would remove" if args.dry_run else "removed") if entry.remove else "kept"
        print(f"{verb} {entry.uri} ({entry.reason})")
    removed = sum(entry.remove for entry in entries)
    print(f"{'would remove' if args.dry_run else 'removed'} {removed} of {len(entries)} temporary entries under "
          f"{', '.join(storage.uri(part) for part in under)}")
    return 0


def _duration(text: str) -> float:
    from genoflow.errors import GenoflowError
    from genoflow.storage.janitor import parse_duration

    try:
        return parse_duration(text)
    except GenoflowError as err:  # argparse reports this one as a usage error
        raise argparse.ArgumentTypeError(str(err).removeprefix("--older-than: ")) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genoflow", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    demo = verbs.add_parser("demo-data", help="simulate a realistic demo cohort (msprime coalescent)",
                            description="Simulate a cohort: VCF, reference FASTA, GFF3, per-patient "
                            "FASTQ and clinical CSVs, plus the truth (never read by the pipeline).")
    demo.add_argument("--out", default=str(Settings().home / "data"), help="output folder (default: %(default)s)")
    _add_spec_arguments(demo)
    demo.add_argument("--coverage", type=float, default=None,
                      help="sequence a panel to this mean depth instead of --reads (the reads demo: 20)")
    demo.add_argument("--panel-length", type=int, default=50_000,
                      help="with --coverage: the targeted panel's length in bp (default: %(default)s)")
    demo.add_argument("--read-length", type=int, default=150, help="with --coverage (default: %(default)s)")
    demo.add_argument("--paired", action="store_true", help="with --coverage: paired-end reads (R1/R2 files)")
    demo.set_defaults(func=_demo_data)

    version = verbs.add_parser("dataset-version", help="print the DVC content hash of the raw cohort",
                               description="Print the DVC hash recorded in <target>.dvc.")
    version.add_argument("--target", default="data/raw", help="DVC-tracked folder (default: %(default)s)")
    version.set_defaults(func=_dataset_version)

    key = verbs.add_parser("run-key", help="print the pipeline run key for the current data and params.yaml",
                           description="Print the run key that MLflow runs are tagged with.")
    key.add_argument("--target", default="data/raw", help="DVC-tracked folder (default: %(default)s)")
    key.set_defaults(func=_run_key)

    pj = verbs.add_parser("params-json", help="print params.yaml as one line of JSON (for jobs' --params-json)",
                          description="Print params.yaml as canonical JSON.")
    pj.set_defaults(func=_params_json)

    promote = verbs.add_parser("promote", help="register a run's candidates and gate the champion alias",
                               description="Register each target's candidate model of a pipeline run, alias "
                               "it challenger, and move champion only past the margin in params.yaml.")
    promote.add_argument("--run-key", required=True, help="pipeline run key")
    promote.set_defaults(func=_promote)

    summary = verbs.add_parser("summary", help="summarise the latest (or a given) pipeline run from MLflow",
                               description="Dataset version, held-out metrics of each model, the registered "
                               "versions and the champion decision, and how to open the UIs.")
    summary.add_argument("--run-key", default=None, help="pipeline run key (default: the latest run)")
    summary.set_defaults(func=_summary)

    lineage = verbs.add_parser("lineage", help="a model version's run, dataset version, raw files and code commit",
                               description="Follow a registered model version back to its MLflow run (experiment, "
                               "metrics), the dataset version it was trained on (the DVC hash), that dataset's raw "
                               "files (path, md5, size, where the DVC remote keeps each) and the git commits of the "
                               "code and of the dataset's .dvc pointer.")
    lineage.add_argument("model", help="registered model name, e.g. genoflow_disease_status")
    lineage.add_argument("ref", nargs="?", default=None, metavar="VERSION|ALIAS",
                         help="a version number or an alias (default: champion)")
    lineage.add_argument("--json", action="store_true", help="print JSON (every file) instead of text")
    lineage.add_argument("--target", default="data/raw", help="DVC-tracked raw cohort (default: %(default)s)")
    lineage.add_argument("--remote", default=None, help="DVC remote (default: the repository's default remote)")
    lineage.set_defaults(func=_lineage)

    gc = verbs.add_parser("gc", help="remove the temporary folders that killed runs left under the storage root",
                          description="Remove <output>.tmp-* folders and files under the storage root that no live "
                          "attempt is writing: not changed for --older-than, and whose writer (host and pid, in the "
                          "name) is not running on this host. Walks only --under, never into committed outputs.")
    gc.add_argument("--older-than", type=_duration, default="6h", metavar="DURATION",
                    help="keep entries changed more recently than this: 90m, 6h, 2d (default: %(default)s)")
    gc.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    gc.add_argument("--root", default=None, help="storage root URI (default: GENOFLOW_STORAGE_ROOT)")
    gc.add_argument("--under", action="append", default=None, metavar="PATH",
                    help="a folder under the root to clean, repeatable (default: steps)")
    gc.set_defaults(func=_gc)

    dvc = verbs.add_parser("dvc", help="DVC's own command line, e.g. `genoflow dvc push` (atomic WebHDFS uploads)",
                           description="Run `dvc ARGS...` in the project with the GENOFLOW_DVC_REMOTE_URL remote "
                           "as the default and WebHDFS uploads that never leave a partial object on the remote.")
    dvc.add_argument("dvc_args", nargs=argparse.REMAINDER, help="arguments for dvc")
    dvc.set_defaults(func=_dvc)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - a CLI prints one line, not a traceback, for known errors
        from genoflow.errors import GenoflowError

        if isinstance(err, GenoflowError | FileNotFoundError):
            print(f"genoflow {args.verb}: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
