"""Errors a user can hit, each naming the file, the record and what is wrong."""

from __future__ import annotations

__all__ = ["GenoflowError", "InputError", "InputTooLarge", "ParamsError", "INPUT_ERROR_EXIT", "UNAVAILABLE_EXIT"]

# Exit codes of the Spark jobs (genoflow.pipeline.runner.report_errors). Bad input is deterministic:
# the operator fails the Airflow task at once on INPUT_ERROR_EXIT instead of retrying it (decision 0011).
# An unavailable storage root may come back, so that exit keeps the task's retries.
INPUT_ERROR_EXIT = 3
UNAVAILABLE_EXIT = 2


class GenoflowError(Exception):
    """Base class for errors genoflow raises on purpose."""


class InputError(GenoflowError):
    """Bad input data: names the file, the line or record, and what is wrong.

    Parameters
    ----------
    source : str
        The file (path or URI) the bad data came from.
    problem : str
        What is wrong, in words a user can act on.
    line : int, optional
        1-based line number in ``source`` (for text formats).
    record : str, optional
        A record identifier when a line number is not meaningful (a read name, a sample id).
    """

    def __init__(self, source: str, problem: str, *, line: int | None = None, record: str | None = None):
        self.source = source
        self.problem = problem
        self.line = line
        self.record = record
        where = source
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f", record {record!r}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        # Keep the structured fields when the error crosses a Spark/py4j or pickle boundary.
        return (_rebuild_input_error, (self.source, self.problem, self.line, self.record))


def _rebuild_input_error(source, problem, line, record):
    return InputError(source, problem, line=line, record=record)


class InputTooLarge(InputError):
    """Input over a configured cap (bytes, line length, header lines, records): refused, not parsed.

    ``limit`` names the cap's setting, so a server can answer 413 rather than "malformed" (422).
    """

    def __init__(self, source: str, problem: str, *, limit: str, line: int | None = None):
        super().__init__(source, problem, line=line)
        self.limit = limit

    def __reduce__(self):
        return (_rebuild_too_large, (self.source, self.problem, self.limit, self.line))


def _rebuild_too_large(source, problem, limit, line):
    return InputTooLarge(source, problem, limit=limit, line=line)


class ParamsError(InputError):
    """A bad key or value in params.yaml or a run's overrides: ``<source>: <key path>: <problem>``.

    Parameters
    ----------
    source : str
        The params file, or where the overrides came from (``run conf``, ``--params-json``).
    key : str
        The dotted key path, e.g. ``features.top_k``.
    problem : str
        What is wrong, e.g. ``expected an integer, got 'three'``.
    """

    def __init__(self, source: str, key: str, problem: str):
        self.key = key
        super().__init__(source, f"{key}: {problem}")
        self.problem = problem

    def __reduce__(self):
        return (ParamsError, (self.source, self.key, self.problem))
