"""The one error a graph project can fail with: one line naming the file and the entry."""

from __future__ import annotations

from pathlib import Path


def one_line(text: str) -> str:
    """A message on one line: a multi-line exception text (a traceback note, a pydantic report)
    would be cut by a log viewer or a ``tail``."""
    return " ".join(text.split())


class ProjectError(Exception):
    """A graph project that cannot be served. ``str(error)`` is one line:
    ``{file}: {entry}: {problem}`` (``{file}: {problem}`` when no single entry is at fault).

    The worker refuses to start on it (``runledger worker`` exits 2 with this line), so a catalog
    is never partly registered."""

    def __init__(self, config: Path | str, problem: str, *, entry: str | None = None) -> None:
        self.config = str(config)
        self.entry = entry
        self.problem = one_line(problem)
        where = f"{self.config}: {entry}" if entry else self.config
        super().__init__(f"{where}: {self.problem}")
