"""Keep each target's served model on the registry alias: a first load, polling, and reloads."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass

from genoflow.serving.model import ModelStore

__all__ = ["Refresher", "TargetRefresh"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetRefresh:
    """What one refresh did for one target: ``outcome`` is loaded, unchanged, no_alias or failed."""

    target: str
    outcome: str
    previous: str | None
    current: str | None
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Refresher:
    """Resolves ``<name>@<alias>`` for every target and swaps in new versions.

    Parameters
    ----------
    settings : ServingSettings
    source : ModelSource
    store : ModelStore
    on_swap : callable(new, previous), optional
        Called after a new model is served (metrics).
    on_failure : callable(target), optional
        Called when a version could not be loaded.
    """

    def __init__(self, settings, source, store: ModelStore, on_swap=None, on_failure=None):
        self.settings = settings
        self.source = source
        self.store = store
        self._on_swap = on_swap or (lambda new, previous: None)
        self._on_failure = on_failure or (lambda target: None)
        self._lock = threading.Lock()  # one refresh at a time: poller and /admin/reload
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> list[TargetRefresh]:
        """Check every target's alias now and load the versions that moved.

        A registry outage or a version that cannot be served keeps the current model (it is
        logged and reported); it never takes a served target down.
        """
        with self._lock:
            return [self._refresh_target(target) for target in self.store.targets]

    def _refresh_target(self, target: str) -> TargetRefresh:
        name, alias = self.settings.model_name(target), self.settings.alias
        current = self.store.get(target)
        previous = current.version if current else None
        try:
            version = self.source.version_of(name, alias)
            if version is None:
                reason = None if previous else self.source.absence_reason(name)
                self.store.set_unserved(target, reason)
                log.warning("models:/%s@%s does not exist; %s", name, alias,
                            f"still serving v{previous}" if previous else f"nothing to serve ({reason})")
                return TargetRefresh(target, "no_alias", previous, previous, error=reason)
            if version == previous:
                return TargetRefresh(target, "unchanged", previous, previous)
            model = self.source.load(target, name, alias)
        except Exception as error:  # any failure keeps the current model served
            log.error("cannot load models:/%s@%s: %s", name, alias, error)
            self._on_failure(target)
            return TargetRefresh(target, "failed", previous, previous, error=str(error))
        replaced = self.store.put(model)
        self._on_swap(model, replaced)
        log.info("serving %s v%s for %s (was %s)", model.name, model.version, target,
                 f"v{previous}" if previous else "nothing")
        return TargetRefresh(target, "loaded", previous, model.version)

    def start(self) -> None:
        """Poll every ``settings.poll_seconds`` in a daemon thread (no-op when 0)."""
        if self.settings.poll_seconds <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="genoflow-model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            self.refresh()
