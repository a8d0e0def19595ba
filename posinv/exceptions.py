"""Domain exceptions. Each carries structured detail (which item, which
field, why) that the API turns into a 400 or 409 answer."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Problem:
    """One reason something was refused: where (item index, field) and why."""

    reason: str
    field: str | None = None
    index: int | None = None
    code: str = "invalid"

    def as_dict(self) -> dict:
        data = {"code": self.code, "reason": self.reason}
        if self.field is not None:
            data["field"] = self.field
        if self.index is not None:
            data["index"] = self.index
        return data


class DomainError(Exception):
    """Base for refusals the caller can act on; `status` is the HTTP answer."""

    status = 400

    def __init__(self, problems: list[Problem] | str, *, code: str = "invalid"):
        if isinstance(problems, str):
            problems = [Problem(reason=problems, code=code)]
        self.problems = problems
        super().__init__("; ".join(_describe(p) for p in problems))

    def as_dict(self) -> dict:
        return {"errors": [p.as_dict() for p in self.problems]}


def _describe(problem: Problem) -> str:
    where = []
    if problem.index is not None:
        where.append(f"item {problem.index}")
    if problem.field:
        where.append(problem.field)
    return f"{' '.join(where)}: {problem.reason}" if where else problem.reason


class InvalidInput(DomainError):
    """Input that can never be applied as sent (400)."""


class Conflict(DomainError):
    """The same key was used before for different content (409)."""

    status = 409


class NotFound(DomainError):
    """A referenced object does not exist (404)."""

    status = 404


class LedgerRefused(DomainError):
    """A batch of moves was refused; nothing of it was applied (400)."""
