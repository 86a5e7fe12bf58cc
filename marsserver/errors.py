"""Errors the service answers with: each one knows its HTTP status and its JSON `error` code.

The pipeline raises these; the HTTP layer turns them into `{"error": ..., "detail": ...}`.
Anything else that escapes is a bug and becomes a logged 500 without a traceback to the client.
"""

from __future__ import annotations

from typing import ClassVar

#: No failure is remembered, and no upstream host rested, longer than this (seconds), whatever
#: a `Retry-After` said: a hold is a promise to callers that the service is down, and a feed
#: that asks for a week (or sends 999999 by mistake) must not take the service away that long.
MAX_HOLD = 3600


class ServiceError(Exception):
    """Base class: `detail` is the human sentence sent to the client; `cause` what the
    operator's log says instead (hosts, exception classes), never sent to a client: a page
    that says "ClientConnectorDNSError" tells a person nothing and an outsider too much."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    #: Remembered for `--error-ttl` seconds (negative caching), so that a burst during an
    #: outage costs the upstream one call rather than one per request.
    remembered: ClassVar[bool] = False

    def __init__(self, detail: str, *, cause: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.cause = cause or detail
        #: When a replayed failure stops being remembered (wall-clock seconds): a failure
        #: derived from this one (a wallpaper whose source failed) must expire with it.
        self.until: float | None = None


class InternalError(ServiceError):
    """A bug: answered as a 500 and remembered like an upstream failure, so that it cannot
    turn every request into a call upstream."""

    remembered = True


class BadParameter(ServiceError):
    status = 400
    code = "bad_parameter"


class BadSignature(ServiceError):
    """A free size without the deployment's signature, or with a wrong one (never remembered:
    the same URL signed is a good request)."""

    status = 403
    code = "bad_signature"


class NotFound(ServiceError):
    """Nothing there; when NASA said so (no photos for that camera or sol), remembered as
    long as a list is fresh (`info_ttl`: it is an answer, not a failure), so asking again
    does not cost NASA a call each time."""

    status = 404
    code = "not_found"
    remembered = True


class BadUpstream(ServiceError):
    """The upstream answered, but with something we cannot use (remembered as a failure for
    `error_ttl`, never cached as a value)."""

    status = 502
    code = "bad_upstream"
    remembered = True


class Unavailable(ServiceError):
    """Nothing can be served right now; clients may retry after `retry_after` seconds."""

    status = 503
    code = "unavailable"
    remembered = True

    def __init__(self, detail: str, retry_after: int | None = None, *,
                 cause: str | None = None) -> None:
        super().__init__(detail, cause=cause)
        self.retry_after = retry_after


class Overloaded(Unavailable):
    """Our own resize queue is full: shed new work, but never remember it as a failure."""

    code = "overloaded"
    remembered = False


class BudgetSpent(Unavailable):
    """The upstream budget (`--upstream-budget`) has no call left for this: what is cached is
    still served. Never remembered: a token may come in a second, and asking the budget again
    costs the source nothing; the waiters of the one flight share the one answer all the same."""

    code = "upstream_budget_spent"
    remembered = False


class UpstreamTimeout(ServiceError):
    status = 504
    code = "upstream_timeout"
    remembered = True


def error_of(code: str, detail: str, retry_after: int | None = None) -> ServiceError | None:
    """The error a remembered failure names by its `code`; None for a code we never send."""
    kind = _KINDS.get(code)
    if kind is None:
        return None
    if issubclass(kind, Unavailable):
        return kind(detail, retry_after=retry_after)
    return kind(detail)


_KINDS: dict[str, type[ServiceError]] = {kind.code: kind for kind in (
    InternalError, BadParameter, NotFound, BadUpstream, Unavailable, Overloaded, BudgetSpent,
    UpstreamTimeout)}
