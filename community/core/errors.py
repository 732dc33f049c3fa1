"""Expected failures. Each carries its HTTP status; web.py renders them as a page or JSON."""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message
        if code:
            self.code = code


class BadRequest(AppError):
    pass


class LoginRequired(AppError):
    status_code = 401
    code = "login_required"


class PermissionDenied(AppError):
    status_code = 403
    code = "forbidden"


class TwoFactorRequired(PermissionDenied):
    """A staff page of a brand that requires a second factor, from a session that has not
    passed one. `details.enrolled`: the member has an authenticator (this session predates
    it, or signed in without it) or still has to set one up."""

    code = "two_factor_required"

    def __init__(self, *, enrolled: bool, message: str | None = None) -> None:
        super().__init__(message)
        self.details = {"enrolled": enrolled}


class CSRFFailed(AppError):
    status_code = 403
    code = "csrf_failed"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class ThreadMerged(NotFound):
    """The thread was merged into another one the viewer may see: pages redirect there, the API
    answers with a pointer, and anything else is a 404 that names where the content went."""

    code = "thread_merged"

    def __init__(self, target_id: int, message: str | None = None) -> None:
        super().__init__(message)
        self.target_id = target_id
        self.details = {"merged_into": target_id}


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class FormErrors(AppError):
    """Invalid input for named fields; pages re-render the form, the API answers 422."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors
