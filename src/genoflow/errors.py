"""Errors a user can hit, each naming the file, the record and what is wrong."""

from __future__ import annotations

__all__ = ["GenoflowError", "InputError"]


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
