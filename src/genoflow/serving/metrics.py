"""Prometheus metrics and the one log line per request (route, status, latency, model, caller, request id;
no payload)."""

from __future__ import annotations

import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from genoflow.serving.auth import caller_of

__all__ = ["Metrics", "RequestMetricsMiddleware", "MODEL_STATE_KEY", "REQUEST_ID_STATE_KEY"]

log = logging.getLogger("genoflow.serving.access")

MODEL_STATE_KEY = "genoflow_model"  # request.state attribute a route sets to "<name>/v<version>"
REQUEST_ID_STATE_KEY = "genoflow_request_id"  # set by genoflow.serving.audit.AuditMiddleware
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
RISK_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


class Metrics:
    """The API's metrics, in a registry of their own (one per app, so tests can build many apps)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("genoflow_api_requests", "HTTP requests by route template and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("genoflow_api_request_duration_seconds", "Request latency, in the server",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.risk = Histogram("genoflow_prediction_risk", "Predicted risks (P(y=1)) served",
                              ["target"], buckets=RISK_BUCKETS, registry=self.registry)
        self.model_info = Gauge("genoflow_model_info", "The model version served per target (value 1)",
                                ["target", "name", "version", "alias", "run_id", "dataset_version"],
                                registry=self.registry)
        self.reloads = Counter("genoflow_model_reloads", "Model loads by outcome (loaded, failed)",
                               ["target", "outcome"], registry=self.registry)

    def model_swapped(self, new, previous) -> None:
        if previous is not None:
            self.model_info.remove(*self._info_labels(previous))
        self.model_info.labels(*self._info_labels(new)).set(1)
        self.reloads.labels(new.target, "loaded").inc()

    def model_failed(self, target: str) -> None:
        self.reloads.labels(target, "failed").inc()

    def observe_risks(self, target: str, risks) -> None:
        histogram = self.risk.labels(target)
        for r in risks:
            histogram.observe(float(r))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    @staticmethod
    def _info_labels(model) -> tuple[str, ...]:
        return (model.target, model.name, model.version, model.alias, model.run_id, model.dataset_version or "")


class RequestMetricsMiddleware:
    """Counts, times and logs every HTTP request (pure ASGI: no body buffering, ~µs overhead).

    Routes are labelled by template (``/predict``), never by raw path, to bound label cardinality
    and keep anything a client put in a URL out of metrics and logs. A request refused before
    routing (e.g. a 413 on Content-Length) is labelled by its path when that is one of
    ``known_paths``, else ``<unmatched>``.
    """

    def __init__(self, app, metrics: Metrics, known_paths: frozenset[str] = frozenset()):
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # if the app fails before sending a response

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                route = scope["path"] if scope["path"] in self.known_paths else "<unmatched>"
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            state = scope.get("state", {})
            log.info("%s %s %d %.2fms model=%s caller=%s request_id=%s", scope["method"], route, status,
                     elapsed * 1000, state.get(MODEL_STATE_KEY, "-"), caller_of(scope),
                     state.get(REQUEST_ID_STATE_KEY, "-"))
