"""The FastAPI application: wiring of settings, model source, store, refresher and middleware."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

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
    every ``settings.poll_seconds``. Requests never touch MLflow or Spark.
    """
    settings = settings or ServingSettings.from_env()
    if source is None:
        from genoflow.serving.sources import MlflowSource

        source = MlflowSource(settings.resolved_tracking_uri())
    store = ModelStore(settings.targets)
    metrics = Metrics()
    refresher = Refresher(settings, source, store, on_swap=metrics.model_swapped, on_failure=metrics.model_failed)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not settings.api_keys:
            log.warning("no API keys configured (GENOFLOW_API_KEYS): every prediction request will get 401")
        await run_in_threadpool(refresher.refresh)
        refresher.start()
        try:
            yield
        finally:
            refresher.stop()

    app = FastAPI(title="genoflow model API", version="1", lifespan=lifespan,
                  description="Risks (binary targets) and predicted values (quantitative targets) from the "
                              "registry's champion models, scored without Spark.")
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    app.state.refresher = refresher
    app.state.slots = ScoringSlots(settings.max_concurrent, settings.max_queued)
    install_error_handlers(app)
    app.include_router(router)
    # Added innermost first: the metrics middleware (outermost) counts 413s and 500s too.
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(BodyLimitMiddleware, default_limit=settings.max_body_bytes,
                       limits={"/predict/vcf": settings.max_upload_bytes})
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics,
                       known_paths=frozenset(getattr(r, "path", "") for r in app.routes))
    return app
