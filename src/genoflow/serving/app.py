"""The FastAPI application: wiring of settings, model source, store, refresher and middleware."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from genoflow.serving.audit import AuditLog, AuditMiddleware
from genoflow.serving.auth import KeyRing
from genoflow.serving.errors import CatchAllMiddleware, install_error_handlers
from genoflow.serving.limits import BodyLimitMiddleware, ScoringSlots
from genoflow.serving.metrics import Metrics, RequestMetricsMiddleware
from genoflow.serving.model import ModelStore
from genoflow.serving.refresh import Refresher
from genoflow.serving.routes import router
from genoflow.serving.settings import ServingSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: ServingSettings | None = None, *, source=None) -> FastAPI:
    """The model API.

    Parameters
    ----------
    settings : ServingSettings, optional
        Default: `ServingSettings.from_env`.
    source : ModelSource, optional
        Where models come from; default `MlflowSource` on the settings' tracking URI. Tests pass
        a `StaticSource` of in-memory models.

    Notes
    -----
    On start-up the models are loaded once before the first request is accepted (a registry that
    is down leaves ``/ready`` at 503 and the poller retries); then a daemon thread polls the alias
    every ``settings.poll_seconds``. Requests never touch MLflow or Spark. Every route but the
    settings' ``public_routes`` needs an API key (`genoflow.serving.auth`); requests to those are
    recorded in the audit log when ``settings.audit_log`` is set (`genoflow.serving.audit`).

    Raises
    ------
    genoflow.errors.InputError
        The keys file cannot be read or parsed.
    ValueError
        The audit log cannot be opened.
    """
    settings = settings or ServingSettings.from_env()
    if source is None:
        from genoflow.serving.sources import MlflowSource

        source = MlflowSource(settings.resolved_tracking_uri())
    keys = KeyRing(settings.api_keys, settings.api_keys_file)
    audit = AuditLog(settings.audit_log, settings.audit_hash_key) if settings.audit_log else None
    store = ModelStore(settings.targets)
    metrics = Metrics()
    refresher = Refresher(settings, source, store, on_swap=metrics.model_swapped, on_failure=metrics.model_failed)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not keys:
            log.warning("no API keys configured (GENOFLOW_API_KEYS or GENOFLOW_API_KEYS_FILE): every request "
                        "to a protected route will get 401")
        log.info("API callers: %s; open without a key: %s; audit log: %s", ", ".join(keys.callers()) or "none",
                 ", ".join(sorted(settings.public_routes)) or "nothing", settings.audit_log or "off")
        await run_in_threadpool(refresher.refresh)
        refresher.start()
        try:
            yield
        finally:
            refresher.stop()

    # FastAPI's own /docs, /redoc and /openapi.json are off: routes.py serves them behind the key unless public.
    app = FastAPI(title="genoflow model API", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  description="Risks (binary targets) and predicted values (quantitative targets) from the "
                              "registry's champion models, scored without Spark.")
    app.state.settings = settings
    app.state.keys = keys
    app.state.audit = audit
    app.state.store = store
    app.state.metrics = metrics
    app.state.refresher = refresher
    app.state.slots = ScoringSlots(settings.max_concurrent, settings.max_queued)
    install_error_handlers(app)
    app.include_router(router)
    # Added innermost first: the metrics middleware counts 413s and 500s too, and the audit middleware
    # (outermost) gives every request its id before anything can log it.
    known_paths = frozenset(getattr(r, "path", "") for r in app.routes)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(BodyLimitMiddleware, default_limit=settings.max_body_bytes,
                       limits={"/predict/vcf": settings.max_upload_bytes})
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, known_paths=known_paths)
    app.add_middleware(AuditMiddleware, audit=audit, public_paths=settings.public_paths, known_paths=known_paths)
    return app
