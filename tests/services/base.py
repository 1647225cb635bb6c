"""What every test service shares: start (stopping again if it does not come up), wait until ready,
stop (its own extra processes first, then its script's daemons), and use as a context manager."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate ``process`` (SIGTERM, so a JVM runs its shutdown hooks); kill it after ``timeout`` s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(ready: Callable[[], bool], timeout: float, failure: Callable[[], str],
               gone: Callable[[], bool] = lambda: False, interval: float = 0.5) -> None:
    """Poll ``ready()`` until true; raise RuntimeError(``failure()``) after ``timeout`` s or once ``gone()``
    (the process that should become ready has exited), whichever comes first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if gone() or time.monotonic() > deadline:
            raise RuntimeError(failure())
        time.sleep(interval)


class Service:
    """A service a test starts: subclasses define :meth:`_start` (start, return once ready) and
    :meth:`_stop` (stop the script's daemons); :meth:`_extra_processes` lists processes started beside
    them (stopped first).

    ``with Service(...) as service:`` starts it and stops it on exit, also when the test fails.
    """

    startup_s: float | None = None

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _extra_processes(self) -> Iterable[subprocess.Popen]:
        return ()

    def start(self):
        """Start and wait until ready (``startup_s`` says how long it took); on any failure stop what
        did start, so a broken start leaves no daemon behind."""
        t0 = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def stop(self) -> None:
        for process in self._extra_processes():
            stop_process(process)
        self._stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
