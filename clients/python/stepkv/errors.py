"""Exceptions of the stepkv client.

Every problem reply (RFC 9457 ``application/problem+json``) becomes a :class:`StepkvProblem`
subclass chosen by HTTP status, carrying the stable ``code``; transport failures are
:class:`StepkvTimeout` (no reply within the timeout) and :class:`StepkvNetworkError`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional


class StepkvError(Exception):
    """Base of every exception the client raises."""


class StepkvProblem(StepkvError):
    """The server answered with a problem.

    Attributes:
        status: HTTP status (int).
        code: stable error code, e.g. ``seq_conflict`` (README, Error codes).
        detail: human-readable explanation.
        request_id: the ``x-request-id`` that finds the request in the server's logs.
        problem: the whole problem body (dict), including extension members such as
            ``errors`` (invalid_request), ``lastSeq`` (seq_conflict) or ``etag`` (412).
    """

    def __init__(self, problem: Dict[str, Any]):
        self.problem = problem
        self.status = int(problem.get("status", 0))
        self.code = str(problem.get("code", ""))
        self.detail = str(problem.get("detail", ""))
        self.request_id: Optional[str] = problem.get("requestId")
        super().__init__(f"HTTP {self.status} {self.code}: {self.detail}")


class InvalidRequest(StepkvProblem):
    """400 (or 415): schema, observation, policy or storage options are invalid."""

    @property
    def errors(self):
        """For ``invalid_request``: a list of ``{path, message}``."""
        return self.problem.get("errors", [])


class Unauthorized(StepkvProblem):
    """401: missing or unknown API key."""


class NotFound(StepkvProblem):
    """404: unknown session (or another tenant's), model, snapshot or route."""


class Conflict(StepkvProblem):
    """409: ``seq_conflict``, ``policy_incompatible``, ``snapshot_exists``, ``snapshot_limit``…"""

    @property
    def last_seq(self) -> Optional[int]:
        """For ``seq_conflict``: the session's last successful seq."""
        return self.problem.get("lastSeq")


class PreconditionFailed(StepkvProblem):
    """412 / 428: If-Match does not name the session's state (``etag`` is the current one) or is missing."""

    @property
    def etag(self) -> Optional[str]:
        return self.problem.get("etag")


class TooLarge(StepkvProblem):
    """413: body, tokens per step or imported memory over a limit."""


class Unprocessable(StepkvProblem):
    """422: memory blob or step result refused (``memory_*``, ``model_mismatch``, ``non_finite``…)."""


class RateLimited(StepkvProblem):
    """429: ``rate_limited`` (``retry_after`` seconds) or ``session_limit`` (delete a session)."""

    def __init__(self, problem: Dict[str, Any], retry_after: Optional[float] = None):
        super().__init__(problem)
        self.retry_after = retry_after


class ServerError(StepkvProblem):
    """5xx: a server-side failure (``internal``: ``request_id`` finds it in the logs) or unavailability."""


class StepkvTimeout(StepkvError):
    """No reply within ``timeout`` seconds. The request may still have run: retry with the same seq."""

    def __init__(self, timeout: float, what: str):
        self.timeout = timeout
        super().__init__(f"{what}: no reply within {timeout} s")


class StepkvNetworkError(StepkvError):
    """The connection failed (refused, reset, DNS…)."""


_BY_STATUS = {
    400: InvalidRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: TooLarge,
    415: InvalidRequest,
    422: Unprocessable,
    428: PreconditionFailed,
}


def problem_error(problem: Dict[str, Any], retry_after: Optional[str] = None) -> StepkvProblem:
    """The typed exception of a problem body (``retry_after``: the Retry-After header, seconds)."""
    status = int(problem.get("status", 0))
    if status == 429:
        seconds = None
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = None
        return RateLimited(problem, seconds)
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else StepkvProblem)
    return cls(problem)
