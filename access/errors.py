"""Errors raised by operations; the web layer turns them into form errors or problem+json."""
from __future__ import annotations


class DomainError(Exception):
    """A rule refused the operation. `field` names the offending input when there is one."""

    status = 422
    code = "rule-violated"

    def __init__(self, template: str, field: str | None = None, **params: object) -> None:
        # `template` is English with %(name)s placeholders; the web layer
        # translates the template and fills in `params` (see portal.messages).
        self.template = template
        self.params = params
        self.message = template % params if params else template
        self.field = field
        super().__init__(self.message)


class ValidationError(DomainError):
    code = "invalid-input"


class NotFound(DomainError):
    status = 404
    code = "not-found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
