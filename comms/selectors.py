"""Reads of messages with tenancy applied first (see ``trialhub.selectors``).

Sponsor and CRO people see the messages of the studies in their reach (another
organisation's drafts excepted); site people see only messages delivered to them.
``message_for_user`` answers ``Http404`` for missing and not-yours alike.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, CharField, Exists, OuterRef, Q, QuerySet, Value, When
from django.http import Http404

from comms.models import CATEGORY_RULES, Delivery, DeliveryState, Message, MessageStatus
from comms.permissions import APPROVER_ROLES, SENDER_ORGANIZATION_KINDS
from trialhub.models import Raci, ResponsibilityEntry, RoleAssignment
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user

MESSAGE_RELATED = ("study__sponsor", "sender", "sender_organization", "endorsed_by")


def messages_for_user(user: AbstractBaseUser | None) -> QuerySet[Message]:
    """Messages the user may see, newest first; none without a tenant."""
    membership = membership_of(user)
    if membership is None:
        return Message.objects.none()
    organization = membership.organization
    if organization.kind in SENDER_ORGANIZATION_KINDS:
        messages = Message.objects.filter(study__in=studies_for_user(user)).filter(
            Q(sender_organization=organization) | ~Q(status=MessageStatus.DRAFT)
        )
    else:
        delivered_to_user = (
            Delivery.objects.filter(recipient=user)
            .exclude(state=DeliveryState.PENDING)
            .values("message_id")
        )
        messages = Message.objects.filter(status=MessageStatus.SENT, id__in=delivered_to_user)
    return messages.select_related(*MESSAGE_RELATED)


def message_for_user(user: AbstractBaseUser | None, message_id: int | str) -> Message:
    """The message with this id if the user may see it; ``Http404`` otherwise."""
    try:
        return messages_for_user(user).get(pk=int(message_id))
    except (Message.DoesNotExist, TypeError, ValueError):
        raise Http404("No such message.") from None


def _category_area() -> Case:
    """The responsibility area of each message's category, as SQL."""
    return Case(
        *(When(category=slug, then=Value(rule.area)) for slug, rule in CATEGORY_RULES.items()),
        output_field=CharField(),
    )


def pending_approvals_for_user(user: AbstractBaseUser | None) -> QuerySet[Message]:
    """Messages waiting for this user's decision, oldest submission first: their organisation
    is Accountable for the message's area on the study, and they hold an approver role there
    (sponsor lead, CRO project manager) or are the organisation's admin."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        return Message.objects.none()
    accountable = ResponsibilityEntry.objects.filter(
        study=OuterRef("study"),
        area=OuterRef("area_slug"),
        organization=membership.organization,
        code=Raci.ACCOUNTABLE,
    )
    messages = (
        Message.objects.filter(
            status=MessageStatus.PENDING_APPROVAL, study__in=studies_for_user(user)
        )
        .annotate(area_slug=_category_area())
        .filter(Exists(accountable))
    )
    if not membership.is_org_admin:
        approver_on = (
            RoleAssignment.objects.active()
            .filter(user=user, role__in=APPROVER_ROLES)
            .values("study_id")
        )
        messages = messages.filter(study__in=approver_on)
    return messages.select_related(*MESSAGE_RELATED).order_by("submitted_at", "id")
