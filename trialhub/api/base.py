"""The tenancy base of every API view: an unscoped queryset cannot be used by accident.

Views derive from ``TenantScopedMixin`` and implement ``safely_get_queryset(user)`` with a
selector; overriding ``get_queryset`` is refused when the class is defined (PostHog's rule).
Objects outside the user's reach are therefore 404, exactly like missing ones.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


class TenantScopedMixin:
    """Mixin for DRF generic views and viewsets."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__ or getattr(cls, "queryset", None) is not None:
            raise TypeError(
                f"{cls.__name__}: implement safely_get_queryset(user) instead of "
                "get_queryset/queryset, so tenancy is always applied."
            )

    def get_queryset(self) -> QuerySet:
        return self.safely_get_queryset(self.request.user)

    def safely_get_queryset(self, user) -> QuerySet:
        raise NotImplementedError(f"{type(self).__name__} must implement safely_get_queryset")


def exception_handler(error, context):
    """Services raise Django's ValidationError/PermissionDenied; the API answers 400/403."""
    if isinstance(error, DjangoValidationError):
        detail = (
            error.message_dict
            if hasattr(error, "error_dict")
            else {"non_field_errors": error.messages}
        )
        error = exceptions.ValidationError(detail)
    elif isinstance(error, DjangoPermissionDenied):
        error = exceptions.PermissionDenied(str(error) or None)
    return drf_exception_handler(error, context)
