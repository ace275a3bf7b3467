"""Writes: one function per business action, atomic and audited (STYLE.md)."""

from trialhub.services.coordination import (
    action_item_set_done,
    meeting_create,
    status_update_create,
)
from trialhub.services.matrix import responsibility_matrix_set
from trialhub.services.organizations import member_create, organization_create
from trialhub.services.roles import (
    object_permissions_sync,
    role_assignment_create,
    role_assignment_end,
)
from trialhub.services.studies import engagement_create, study_create

__all__ = [
    "action_item_set_done",
    "engagement_create",
    "meeting_create",
    "member_create",
    "object_permissions_sync",
    "organization_create",
    "responsibility_matrix_set",
    "role_assignment_create",
    "role_assignment_end",
    "status_update_create",
    "study_create",
]
