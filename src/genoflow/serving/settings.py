"""The model API's settings, from the environment (every value has a default but the API keys)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["ServingSettings"]

_MIB = 1024 * 1024


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
        Keys accepted on prediction and admin routes. Empty: every such request is refused.
    host, port : str, int
        Where ``python -m genoflow.serving`` listens.
    max_body_bytes : int
        Largest JSON request body; larger ones get 413.
    max_upload_bytes : int
        Largest ``/predict/vcf`` upload (the whole multipart body); larger ones get 413.
    max_vcf_records : int
        Most data lines read from one uploaded VCF (bounds the work a small gzip file can cause).
    max_batch : int
        Most patients in one ``/predict/batch`` request; more get 413.
    """

    targets: tuple[str, ...] = ("disease_status", "treatment_response")
    model_prefix: str = "genoflow"
    alias: str = "champion"
    tracking_uri: str | None = None
    poll_seconds: float = 30.0
    api_keys: frozenset[str] = field(default_factory=frozenset, repr=False)
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 4 * _MIB
    max_upload_bytes: int = 64 * _MIB
    max_vcf_records: int = 1_000_000
    max_batch: int = 1000

    def __post_init__(self):
        if not self.targets:
            raise ValueError("at least one target must be served")
        for name in ("max_body_bytes", "max_upload_bytes", "max_vcf_records", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.poll_seconds < 0:
            raise ValueError(f"poll_seconds must be >= 0, got {self.poll_seconds}")

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
        """Settings from ``GENOFLOW_API_KEYS`` and ``GENOFLOW_SERVING_*`` variables.

        ``GENOFLOW_API_KEYS`` (comma-separated), ``GENOFLOW_SERVING_HOST``, ``_PORT``, ``_TARGETS``
        (comma-separated), ``_MODEL_PREFIX``, ``_ALIAS``, ``_POLL_SECONDS``, ``_MAX_BODY_BYTES``,
        ``_MAX_UPLOAD_BYTES``, ``_MAX_VCF_RECORDS``, ``_MAX_BATCH``. The tracking URI is
        `genoflow.config.Settings`' (``MLFLOW_TRACKING_URI``, else the project's SQLite store under
        ``GENOFLOW_HOME``).

        Raises
        ------
        ValueError
            A value that is not of its type, naming the variable.
        """
        from genoflow.config import Settings

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

        return cls(
            targets=get("TARGETS", _csv, defaults.targets),
            model_prefix=get("MODEL_PREFIX", str, defaults.model_prefix),
            alias=get("ALIAS", str, defaults.alias),
            tracking_uri=Settings(env).mlflow_tracking_uri,
            poll_seconds=get("POLL_SECONDS", float, defaults.poll_seconds),
            api_keys=frozenset(_csv(env.get("GENOFLOW_API_KEYS", ""))),
            host=get("HOST", str, defaults.host),
            port=get("PORT", int, defaults.port),
            max_body_bytes=get("MAX_BODY_BYTES", int, defaults.max_body_bytes),
            max_upload_bytes=get("MAX_UPLOAD_BYTES", int, defaults.max_upload_bytes),
            max_vcf_records=get("MAX_VCF_RECORDS", int, defaults.max_vcf_records),
            max_batch=get("MAX_BATCH", int, defaults.max_batch),
        )


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())
