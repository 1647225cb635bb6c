"""The model API's settings, from the environment (every value has a default but the API keys).

A pydantic-settings model: `ServingSettings.from_env` reads each variable the model names
(``GENOFLOW_SERVING_<FIELD>``, and ``GENOFLOW_API_KEYS[_FILE]``/``GENOFLOW_AUDIT_*`` for the
fields with their own names); building ``ServingSettings(...)`` directly reads no environment,
so tests and callers get exactly what they pass. See docs/decisions/0020.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

__all__ = ["ServingSettings", "ServingSettingsError", "PUBLIC_ROUTE_PATHS"]

_MIB = 1024 * 1024
# Routes an operator may open to callers without a key (GENOFLOW_SERVING_PUBLIC_ROUTES), and their paths.
PUBLIC_ROUTE_PATHS = {"health": ("/health",), "ready": ("/ready",), "metrics": ("/metrics",),
                      "docs": ("/docs", "/redoc", "/openapi.json")}
# Integer caps, each >= 1 and read from GENOFLOW_SERVING_<NAME upper-cased>.
_LIMITS = ("max_body_bytes", "max_upload_bytes", "max_vcf_bytes", "max_line_bytes", "max_header_lines",
           "max_vcf_records", "max_batch", "max_concurrent")
_PREFIX = "GENOFLOW_SERVING_"
# Fields read from a variable of their own name rather than GENOFLOW_SERVING_<FIELD>.
_OWN_NAMES = {"api_keys": "GENOFLOW_API_KEYS", "api_keys_file": "GENOFLOW_API_KEYS_FILE",
              "audit_log": "GENOFLOW_AUDIT_LOG", "audit_hash_key": "GENOFLOW_AUDIT_HASH_KEY"}
# Not read from a GENOFLOW_SERVING_ variable: the URI is genoflow.config.Settings' (MLFLOW_TRACKING_URI).
_NOT_FROM_ENV = frozenset({"tracking_uri"})
_TYPE_NAMES = {"int_parsing": "int", "float_parsing": "float"}

CommaSeparated = Annotated[tuple[str, ...], NoDecode]  # "a, b" rather than pydantic-settings' JSON
CommaSeparatedSet = Annotated[frozenset[str], NoDecode]


class ServingSettingsError(ValueError):
    """A serving variable that is not of its type or breaks a rule, or a keys file that cannot be read."""


class ServingSettings(BaseSettings):
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

    model_config = SettingsConfigDict(env_prefix=_PREFIX, case_sensitive=False, frozen=True, extra="forbid",
                                      populate_by_name=True)

    targets: CommaSeparated = ("disease_status", "treatment_response")
    model_prefix: str = "genoflow"
    alias: str = "champion"
    tracking_uri: str | None = None
    poll_seconds: float = 30.0
    api_keys: CommaSeparatedSet = Field(default=frozenset(), repr=False, validation_alias=_OWN_NAMES["api_keys"])
    api_keys_file: str | None = Field(default=None, validation_alias=_OWN_NAMES["api_keys_file"])
    public_routes: CommaSeparatedSet = frozenset({"health"})
    audit_log: str | None = Field(default=None, validation_alias=_OWN_NAMES["audit_log"])
    audit_hash_key: str | None = Field(default=None, repr=False, validation_alias=_OWN_NAMES["audit_hash_key"])
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

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # Only what the caller passes: the environment is read by from_env, from the mapping it is given.
        return (init_settings,)

    @field_validator("targets", "api_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        return _csv(value) if isinstance(value, str) else value

    @field_validator("public_routes", mode="before")
    @classmethod
    def _split_routes(cls, value: Any) -> Any:
        # "none" (alone or in the list) is how an operator says no route is public.
        return frozenset(_csv(value)) - {"none"} if isinstance(value, str) else value

    @field_validator("port", "max_queued", *_LIMITS, mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        # As int() reads it: pydantic alone would take "10.0" for 10.
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise PydanticCustomError("int_parsing", "Input should be a valid integer") from None
        return value

    @field_validator("targets")
    @classmethod
    def _some_target(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one target must be served")
        return value

    @field_validator(*_LIMITS)
    @classmethod
    def _at_least_one(cls, value: int, info) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be at least 1, got {value}")
        return value

    @field_validator("max_queued", "poll_seconds")
    @classmethod
    def _not_negative(cls, value: float, info) -> float:
        if value < 0:
            raise ValueError(f"{info.field_name} must be >= 0, got {value}")
        return value

    @field_validator("public_routes")
    @classmethod
    def _known_routes(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = set(value) - set(PUBLIC_ROUTE_PATHS)
        if unknown:
            raise ValueError(f"public_routes: {', '.join(sorted(unknown))} cannot be public; choose from "
                             f"{', '.join(PUBLIC_ROUTE_PATHS)} (GENOFLOW_SERVING_PUBLIC_ROUTES, or 'none')")
        return value

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
        ServingSettingsError
            A ValueError: a value that is not of its type, or a keys file that cannot be read or parsed, naming
            the variable or file.
        """
        from genoflow.config import Settings
        from genoflow.errors import InputError
        from genoflow.serving.auth import read_key_file

        env = os.environ if environ is None else environ
        # Each variable the model names, looked up one by one (tests/test_deploy_k8s.py records which);
        # blank means unset, as it always has.
        given = {name: env.get(name, "").strip() for name in _variables().values()}
        given = {name: value for name, value in given.items() if value}
        keys_file = given.get(_OWN_NAMES["api_keys_file"])
        if keys_file:
            try:
                read_key_file(keys_file)
            except InputError as error:
                raise ServingSettingsError(str(error)) from None
        try:
            values = _MappingEnvSource(cls, given)()
            return cls(**values, tracking_uri=Settings(env).mlflow_tracking_uri)
        except ValidationError as error:
            raise ServingSettingsError(_explain(error, given)) from None


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        # Lower-cased as pydantic-settings matches them (case_sensitive=False); from_env has already
        # looked each name up in its exact case.
        self._environ = {name.lower(): value for name, value in environ.items()}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._environ


def _variables() -> dict[str, str]:
    """Each field read from the environment and the variable it is read from."""
    return {name: _OWN_NAMES.get(name, f"{_PREFIX}{name.upper()}")
            for name in ServingSettings.model_fields if name not in _NOT_FROM_ENV}


def _explain(error: ValidationError, given: Mapping[str, str]) -> str:
    """One line per problem, naming the variable and the value it was set to."""
    variables = _variables()
    lines = []
    for problem in error.errors():
        where = str(problem["loc"][0]) if problem["loc"] else ""
        variable = variables.get(where, where)
        raw = given.get(variable)
        if problem["type"] in _TYPE_NAMES and raw is not None:
            lines.append(f"{variable}={raw!r} is not a valid {_TYPE_NAMES[problem['type']]}")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"{variable}={raw!r}: {message}" if raw is not None else f"{variable}: {message}")
    return "; ".join(lines)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())
