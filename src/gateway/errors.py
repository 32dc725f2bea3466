"""The errors the API answers with, one class per Megam error code (docs/original.md §2.3).

Handlers raise them; the error middleware renders them as ``Megam::Error`` objects. ``msg`` says
what went wrong in words a user understands, ``more`` gives the detail (parser output, hints).
"""

from __future__ import annotations


class ApiError(Exception):
    status: int = 500

    def __init__(self, msg: str, more: str = "", *, status: int | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.more = more
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class NotAcceptable(ApiError):
    """Megam's code for a header that cannot be parsed."""

    status = 406


class RequestTimeout(ApiError):
    """A client that sends its request too slowly (a slow-drip body)."""

    status = 408


class AlreadyExists(ApiError):
    """Not in Megam's table: 409 for a create that clashes with an existing name."""

    status = 409


class TooLarge(ApiError):
    status = 413


class Unavailable(ApiError):
    """A backend (store, broker, uid service) cannot serve the request right now."""

    status = 503
