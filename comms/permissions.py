"""Who may do what with messages, as data (see ``trialhub.permissions`` for the study roles).

Seeing a message is tenancy (``comms.selectors``); these answer "you can see it, but may you
act on it?" — the services raise ``PermissionDenied`` when not.
"""

from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractBaseUser

from comms.models import Message
from trialhub.models import OrganizationKind, Raci, ResponsibilityEntry, RoleAssignment, StudyRole
from trialhub.permissions import membership_of

# Organisations whose people write to sites; site people only receive.
SENDER_ORGANIZATION_KINDS = frozenset({OrganizationKind.SPONSOR, OrganizationKind.CRO})
# Study roles whose holders write to sites (viewers only read); organisation admins may too.
WRITER_ROLES = frozenset({StudyRole.SPONSOR_LEAD, StudyRole.CRO_PM, StudyRole.CRA})
# RACI codes of the sender's organisation that let a message go out without approval.
DIRECT_SEND_CODES = frozenset({Raci.RESPONSIBLE, Raci.ACCOUNTABLE})
# Roles that decide on messages pending approval, for the Accountable organisation
# (its organisation admins may as well).
APPROVER_ROLES = frozenset({StudyRole.SPONSOR_LEAD, StudyRole.CRO_PM})
# Roles that co-sign key and critical messages: the sponsor speaking directly.
ENDORSER_ROLES = frozenset({StudyRole.SPONSOR_LEAD})


def can_write(user: AbstractBaseUser, study_id: int, on: datetime.date) -> bool:
    """A sponsor or CRO user holding a writer role on the study on ``on`` (or an organisation
    admin whose organisation takes part in it — the caller checked the study is in reach)."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        return False
    return (
        membership.is_org_admin
        or RoleAssignment.objects.active(on)
        .filter(user=user, study_id=study_id, role__in=WRITER_ROLES)
        .exists()
    )


def can_decide(user: AbstractBaseUser, message: Message, on: datetime.date) -> bool:
    """The user works for the organisation Accountable for the message's area on its study
    and holds an approver role there on ``on`` (or is that organisation's admin)."""
    membership = membership_of(user)
    if membership is None:
        return False
    accountable = ResponsibilityEntry.objects.filter(
        study_id=message.study_id,
        area=message.area,
        organization_id=membership.organization_id,
        code=Raci.ACCOUNTABLE,
    ).exists()
    if not accountable:
        return False
    return (
        membership.is_org_admin
        or RoleAssignment.objects.active(on)
        .filter(user=user, study_id=message.study_id, role__in=APPROVER_ROLES)
        .exists()
    )


def can_endorse(user: AbstractBaseUser, message: Message, on: datetime.date) -> bool:
    """Only a sponsor lead of the message's study endorses."""
    return (
        RoleAssignment.objects.active(on)
        .filter(user=user, study_id=message.study_id, role__in=ENDORSER_ROLES)
        .exists()
    )
