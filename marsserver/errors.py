"""Errors the service answers with: each one knows its HTTP status and its JSON `error` code.

The pipeline raises these; the HTTP layer turns them into `{"error": ..., "detail": ...}`.
Anything else that escapes is a bug and becomes a logged 500 without a traceback to the client.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """Base class: `detail` is the human sentence sent to the client."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadParameter(ServiceError):
    status = 400
    code = "bad_parameter"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class BadUpstream(ServiceError):
    """The upstream answered, but with something we cannot use (never cached)."""

    status = 502
    code = "bad_upstream"


class Unavailable(ServiceError):
    """Nothing can be served right now; clients may retry after `retry_after` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UpstreamTimeout(ServiceError):
    status = 504
    code = "upstream_timeout"
