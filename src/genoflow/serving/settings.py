"""The model API's settings, from the environment (every value has a default but the API keys)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["ServingSettings", "PUBLIC_ROUTE_PATHS"]

_MIB = 1024 * 1024
# Integer caps, each >= 1 and read from GENOFLOW_SERVING_<NAME upper-cased>.
# Routes an operator may open to callers without a key (GENOFLOW_SERVING_PUBLIC_ROUTES), and their paths.
PUBLIC_ROUTE_PATHS = {"health": ("/health",), "ready": ("/ready",), "metrics": ("/metrics",),
                      "docs": ("/docs", "/redoc", "/openapi.json")}
_LIMITS = ("max_body_bytes", "max_upload_bytes", "max_vcf_bytes", "max_line_bytes", "max_header_lines",
           "max_vcf_records", "max_batch", "max_concurrent")


@dataclass(frozen=True)
class ServingSettings:
    """What the model API serves, where it listens and the limits it enforces.

    Attributes
    ----------
    targets : tuple of str
        Targets served, each as registered model ``<model_prefix>_<target>``; the first is the
        default target of a request.
    model_prefix : str
        Registered model name prefix (``promote.model_name_prefix`` in params.yaml).
    alias : str
        Registry alias served (``champion``).
    tracking_uri : str or None
        MLflow tracking/registry URI; None means `genoflow.config.Settings`' (``MLFLOW_TRACKING_URI``,
        else the project's SQLite store).
    poll_seconds : float
        How often a background thread checks whether the alias moved; 0 disables polling.
    api_keys : frozenset of str
        Keys accepted on protected routes, each caller named ``key-<8 hex of its sha256>``.
    api_keys_file : str or None
        A file of ``caller_id: sha256:<hex>`` lines (`genoflow.serving.auth`), re-read when it
        changes. With neither keys nor a file, every protected request is refused.
    public_routes : frozenset of str
        Routes answered without a key, of ``health``, ``ready``, ``metrics``, ``docs`` (``/docs``,
        ``/redoc``, ``/openapi.json``); every other route needs a key. Default: ``health`` only.
    audit_log : str or None
        Append-only JSON-lines file with one record per request to a protected route
        (`genoflow.serving.audit`); None: no audit trail.
    audit_hash_key : str or None
        Secret keying the audit records' hashes of what was scored; None: a random one per process
        (hashes then match only within one run of the API).
    host, port : str, int
        Where ``python -m genoflow.serving`` listens.
    max_body_bytes : int
        Largest JSON request body; larger ones get 413.
    max_upload_bytes : int
        Largest ``/predict/vcf`` upload (the whole multipart body); larger ones get 413.
    max_vcf_bytes : int
        Most bytes of VCF text read from one upload after decompression (a gzip bomb is refused
        after reading at most this plus one line); more get 413.
    max_line_bytes : int
        Longest line of an uploaded VCF; a longer one gets 413 without being built in memory.
    max_header_lines : int
        Most header lines (``##`` lines and ``#CHROM``) of an uploaded VCF; more get 413.
    max_vcf_records : int
        Most data lines read from one uploaded VCF (bounds the work a small gzip file can cause).
    max_batch : int
        Most patients in one ``/predict/batch`` request; more get 413.
    max_concurrent : int
        Scoring requests (``/predict``, ``/predict/batch``, ``/predict/vcf``) worked on at once, each
        in a worker thread off the event loop, so ``/health`` and ``/ready`` keep answering.
    max_queued : int
        Scoring requests allowed to wait for a free slot; one more gets 503 with ``Retry-After``
        at once instead of queueing without bound.
    """

    targets: tuple[str, ...] = ("disease_status", "treatment_response")
    model_prefix: str = "genoflow"
    alias: str = "champion"
    tracking_uri: str | None = None
    poll_seconds: float = 30.0
    api_keys: frozenset[str] = field(default_factory=frozenset, repr=False)
    api_keys_file: str | None = None
    public_routes: frozenset[str] = frozenset({"health"})
    audit_log: str | None = None
    audit_hash_key: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 4 * _MIB
    max_upload_bytes: int = 64 * _MIB
    max_vcf_bytes: int = 64 * _MIB
    max_line_bytes: int = _MIB
    max_header_lines: int = 10_000
    max_vcf_records: int = 1_000_000
    max_batch: int = 1000
    max_concurrent: int = 4
    max_queued: int = 16

    def __post_init__(self):
        if not self.targets:
            raise ValueError("at least one target must be served")
        for name in _LIMITS:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_queued < 0:
            raise ValueError(f"max_queued must be >= 0, got {self.max_queued}")
        if self.poll_seconds < 0:
            raise ValueError(f"poll_seconds must be >= 0, got {self.poll_seconds}")
        unknown = set(self.public_routes) - set(PUBLIC_ROUTE_PATHS)
        if unknown:
            raise ValueError(f"public_routes: {', '.join(sorted(unknown))} cannot be public; choose from "
                             f"{', '.join(PUBLIC_ROUTE_PATHS)} (GENOFLOW_SERVING_PUBLIC_ROUTES, or 'none')")

    @property
    def has_api_keys(self) -> bool:
        """Whether any key can be accepted (``GENOFLOW_API_KEYS`` or ``GENOFLOW_API_KEYS_FILE``)."""
        return bool(self.api_keys or self.api_keys_file)

    @property
    def public_paths(self) -> frozenset[str]:
        """The paths of `public_routes`."""
        return frozenset(p for name in self.public_routes for p in PUBLIC_ROUTE_PATHS[name])

    @property
    def default_target(self) -> str:
        return self.targets[0]

    def model_name(self, target: str) -> str:
        """The registered model serving ``target``, e.g. ``genoflow_disease_status``."""
        from genoflow.registry.tracking import model_name

        return model_name(self.model_prefix, target)

    def resolved_tracking_uri(self) -> str:
        from genoflow.config import Settings

        return self.tracking_uri or Settings().mlflow_tracking_uri

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServingSettings:
        """Settings from ``GENOFLOW_API_KEYS[_FILE]``, ``GENOFLOW_AUDIT_*`` and ``GENOFLOW_SERVING_*`` variables.

        ``GENOFLOW_API_KEYS`` (comma-separated), ``GENOFLOW_API_KEYS_FILE`` (read once here to check
        it), ``GENOFLOW_AUDIT_LOG``, ``GENOFLOW_AUDIT_HASH_KEY``, ``GENOFLOW_SERVING_PUBLIC_ROUTES``
        (comma-separated, or ``none``), ``GENOFLOW_SERVING_HOST``, ``_PORT``, ``_TARGETS``
        (comma-separated), ``_MODEL_PREFIX``, ``_ALIAS``, ``_POLL_SECONDS``, ``_MAX_BODY_BYTES``,
        ``_MAX_UPLOAD_BYTES``, ``_MAX_VCF_BYTES``, ``_MAX_LINE_BYTES``, ``_MAX_HEADER_LINES``,
        ``_MAX_VCF_RECORDS``, ``_MAX_BATCH``, ``_MAX_CONCURRENT``, ``_MAX_QUEUED``. The tracking URI is
        `genoflow.config.Settings`' (``MLFLOW_TRACKING_URI``, else the project's SQLite store under
        ``GENOFLOW_HOME``).

        Raises
        ------
        ValueError
            A value that is not of its type, or a keys file that cannot be read or parsed, naming
            the variable or file.
        """
        from genoflow.config import Settings
        from genoflow.errors import InputError
        from genoflow.serving.auth import read_key_file

        env = os.environ if environ is None else environ
        defaults = cls()

        def get(name, convert, default):
            key = f"GENOFLOW_SERVING_{name}"
            if not env.get(key, "").strip():
                return default
            try:
                return convert(env[key].strip())
            except ValueError:
                raise ValueError(f"{key}={env[key]!r} is not a valid {convert.__name__}") from None  # int/float

        keys_file = env.get("GENOFLOW_API_KEYS_FILE", "").strip() or None
        if keys_file:
            try:
                read_key_file(keys_file)
            except InputError as error:
                raise ValueError(str(error)) from None
        public = get("PUBLIC_ROUTES", _csv, defaults.public_routes)
        return cls(
            targets=get("TARGETS", _csv, defaults.targets),
            model_prefix=get("MODEL_PREFIX", str, defaults.model_prefix),
            alias=get("ALIAS", str, defaults.alias),
            tracking_uri=Settings(env).mlflow_tracking_uri,
            poll_seconds=get("POLL_SECONDS", float, defaults.poll_seconds),
            api_keys=frozenset(_csv(env.get("GENOFLOW_API_KEYS", ""))),
            api_keys_file=keys_file,
            public_routes=frozenset(public) - {"none"},
            audit_log=env.get("GENOFLOW_AUDIT_LOG", "").strip() or None,
            audit_hash_key=env.get("GENOFLOW_AUDIT_HASH_KEY", "").strip() or None,
            host=get("HOST", str, defaults.host),
            port=get("PORT", int, defaults.port),
            **{name: get(name.upper(), int, getattr(defaults, name)) for name in (*_LIMITS, "max_queued")},
        )


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())
