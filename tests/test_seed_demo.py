"""``manage.py seed_demo``: idempotent, and the demo world PRODUCT.md promises."""

from __future__ import annotations

import datetime
import io

import pytest
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone
from guardian.models import UserObjectPermission

from comms.models import (
    PIN_NONE,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Digest,
    Message,
    MessageStatus,
)
from comms.rendering import digest_lines
from comms.selectors import inbox_for_user, pending_approvals_for_user
from comms.services import delivery_acknowledge
from sites.models import MILESTONE_FIELDS, Site, StudySite, StudySiteStatus
from trialhub.models import (
    Area,
    Engagement,
    MatrixRevision,
    Membership,
    Organization,
    Raci,
    ResponsibilityEntry,
    RoleAssignment,
    Study,
)
from trialhub.selectors import studies_for_user

User = get_user_model()
SPONSOR_A, SPONSOR_B = "Sponsor A Pharma", "Sponsor B Biotech"
MERIDIAN, NORTHBRIDGE = "Meridian Clinical Research", "Northbridge CRO"
HISTORY = (Message, Delivery, Digest)
PERSONAS = ("sponsor_a", "sponsor_b", "cro_pm", "cra_1", "cra_2", "site_coord", "site_coord_2")
MERIDIAN_RESPONSIBLE = {
    "monitoring",
    "data_queries",
    "regulatory_documents",
    "training",
    "site_selection",
    "contracts_budgets",
    "payments",
    "protocol_amendments",
    "safety_comms",
}

pytestmark = pytest.mark.django_db


def _row_counts() -> dict[str, int]:
    models = [
        *apps.get_app_config("trialhub").get_models(),
        *apps.get_app_config("sites").get_models(),
        *apps.get_app_config("comms").get_models(),
        User,
        UserObjectPermission,
    ]
    return {model._meta.label: model.objects.count() for model in models}


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seed twice, once for the whole module, inside a transaction rolled back at the end."""
    with (
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        started = timezone.now()
        call_command("seed_demo", stdout=io.StringIO())
        first, first_history = _row_counts(), _message_history()
        call_command("seed_demo", stdout=io.StringIO())
        yield {
            "first": first,
            "second": _row_counts(),
            "first_history": first_history,
            "second_history": _message_history(),
            "started": started,
        }
        transaction.set_rollback(True)


def _message_history() -> dict:
    """What the message history holds, beyond row counts: the last ids, and the deliveries
    and digests by what they are and how far they got."""
    deliveries = Delivery.objects.values_list("kind", "channel", "state", "tier").annotate(
        n=Count("id"), read=Count("read_at"), acknowledged=Count("acknowledged_at")
    )
    return {
        "last ids": [model.objects.aggregate(last=Max("id"))["last"] for model in HISTORY],
        "messages": sorted(Message.objects.values_list("status").annotate(n=Count("id"))),
        "deliveries": sorted(deliveries.order_by()),
        "digest items": Digest.objects.aggregate(
            items=Sum("items_count"), lines=Sum("lines_count")
        ),
    }


def _user(username: str):
    return User.objects.get(username=username)


def _sponsors_of_site(site: Site) -> set[str]:
    return set(StudySite.objects.filter(site=site).values_list("study__sponsor__name", flat=True))


def _site_of(username: str) -> Site:
    return Site.objects.get(organization__memberships__user__username=username)


def test_second_run_changes_no_row_counts(seeded):
    assert seeded["first"] == seeded["second"]
    assert seeded["first"]["trialhub.RoleAssignment"] > 0
    assert seeded["first"]["comms.Message"] > 0 and seeded["first"]["comms.Digest"] > 0


def test_two_sponsors_and_two_cros(seeded):
    kinds = dict(
        Organization.objects.filter(kind__in=["sponsor", "cro"]).values_list("name", "kind")
    )
    assert kinds == {
        SPONSOR_A: "sponsor",
        SPONSOR_B: "sponsor",
        MERIDIAN: "cro",
        NORTHBRIDGE: "cro",
    }


def test_at_least_twelve_sites_in_four_countries_each_with_own_organisation(seeded):
    sites = Site.objects.select_related("organization")
    assert sites.count() >= 12
    assert len({site.country for site in sites}) >= 4
    assert all(site.organization.kind == "site" for site in sites)
    assert len({site.organization_id for site in sites}) == sites.count()


def test_three_studies_two_for_sponsor_a_one_for_sponsor_b(seeded):
    per_sponsor = dict(
        Study.objects.values_list("sponsor__name").annotate(n=Count("id")).order_by()
    )
    assert per_sponsor == {SPONSOR_A: 2, SPONSOR_B: 1}
    assert set(Study.objects.values_list("status", flat=True)) == {"enrolling"}


def test_meridian_on_every_study_northbridge_only_on_sponsor_b(seeded):
    def studies_of(cro: str) -> set[str]:
        return set(Engagement.objects.filter(cro__name=cro).values_list("study__code", flat=True))

    assert studies_of(MERIDIAN) == set(Study.objects.values_list("code", flat=True))
    assert studies_of(NORTHBRIDGE) == set(
        Study.objects.filter(sponsor__name=SPONSOR_B).values_list("code", flat=True)
    )


@pytest.mark.parametrize("username", [*PERSONAS, "admin"])
def test_persona_logs_in_with_demo_password(seeded, username):
    user = authenticate(username=username, password="demo")
    assert user is not None and user.username == username
    assert user.first_name and user.last_name and user.email.endswith("@example.org")


def test_admin_is_a_superuser_outside_every_organisation(seeded):
    admin = _user("admin")
    assert admin.is_superuser and admin.is_staff
    assert not Membership.objects.filter(user=admin).exists()


def test_sponsor_is_accountable_for_every_area_of_every_study(seeded):
    for study in Study.objects.all():
        accountable = ResponsibilityEntry.objects.filter(study=study, code=Raci.ACCOUNTABLE)
        assert set(accountable.values_list("organization_id", flat=True)) == {study.sponsor_id}
        assert set(accountable.values_list("area", flat=True)) == set(Area.values)


def test_meridian_responsible_for_nine_areas_and_consulted_on_recruitment(seeded):
    for study in Study.objects.all():
        codes = dict(
            ResponsibilityEntry.objects.filter(
                study=study, organization__name=MERIDIAN
            ).values_list("area", "code")
        )
        assert codes == {**dict.fromkeys(MERIDIAN_RESPONSIBLE, "R"), "recruitment_comms": "C"}


def test_matrix_agreement_is_a_revision_by_the_sponsor_lead(seeded):
    for study in Study.objects.all():
        authors = set(study.matrix_revisions.values_list("changed_by__username", flat=True))
        lead = "sponsor_a" if study.sponsor.name == SPONSOR_A else "sponsor_b"
        assert authors == {lead}
        assert study.matrix_revisions.count() == 1 + study.engagements.count() + 1


def test_exactly_one_site_keeps_quiet_hours_and_it_is_in_sponsor_b_study(seeded):
    quiet = Site.objects.filter(quiet_hours_enabled=True)
    assert quiet.count() == 1
    assert SPONSOR_B in _sponsors_of_site(quiet.get())


def test_digest_schedules_vary(seeded):
    assert set(Site.objects.values_list("digest_frequency", flat=True)) == {"daily", "weekly"}


def test_site_coord_works_for_both_sponsors_site_coord_2_for_sponsor_a_only(seeded):
    assert _sponsors_of_site(_site_of("site_coord")) == {SPONSOR_A, SPONSOR_B}
    assert _sponsors_of_site(_site_of("site_coord_2")) == {SPONSOR_A}


def test_some_study_sites_changed_cra_twice_in_the_last_twelve_months(seeded):
    year_ago = timezone.localdate() - datetime.timedelta(days=365)
    changes = StudySite.objects.annotate(
        cra_changes=Count(
            "role_assignments",
            filter=Q(role_assignments__role="cra", role_assignments__end_date__gt=year_ago),
        )
    )
    assert changes.filter(cra_changes__gte=2).count() >= 2
    reasons = set(RoleAssignment.objects.filter(role="cra").values_list("end_reason", flat=True))
    assert {"CRA left the company", "Workload rebalancing"} <= reasons


@pytest.mark.parametrize("username", ["cra_1", "cra_2"])
def test_cra_monitors_sites_of_both_sponsors(seeded, username):
    sponsors = set(
        _user(username)
        .role_assignments.active()
        .filter(role="cra")
        .values_list("study__sponsor__name", flat=True)
    )
    assert sponsors == {SPONSOR_A, SPONSOR_B}


@pytest.mark.parametrize(
    ("username", "sponsors"),
    [
        ("sponsor_a", {SPONSOR_A: 2}),
        ("sponsor_b", {SPONSOR_B: 1}),
        ("cro_pm", {SPONSOR_A: 2, SPONSOR_B: 1}),
        ("site_coord", {SPONSOR_A: 1, SPONSOR_B: 1}),
        ("site_coord_2", {SPONSOR_A: 2}),
        ("admin", {}),
    ],
)
def test_personas_reach_the_right_studies(seeded, username, sponsors):
    studies = studies_for_user(_user(username))
    reached = dict(studies.values_list("sponsor__name").annotate(n=Count("id")).order_by())
    assert reached == sponsors


def test_study_site_milestones_fit_status_and_lie_in_the_past(seeded):
    today = timezone.localdate()
    reached = {
        StudySiteStatus.ACTIVATED: "activated_on",
        StudySiteStatus.ENROLLING: "first_patient_in_on",
        StudySiteStatus.CLOSED: "closed_on",
    }
    for study_site in StudySite.objects.all():
        dates = [getattr(study_site, field) for field in MILESTONE_FIELDS]
        assert all(date <= today for date in dates if date), f"{study_site}: future milestone"
        field = reached.get(study_site.status)
        if field:
            assert getattr(study_site, field) is not None, f"{study_site} lacks {field}"
        assert study_site.closed_on is None or study_site.status == StudySiteStatus.CLOSED
    for study in Study.objects.all():
        assert 6 <= study.study_sites.count() <= 8


def test_matrix_history_is_dated_like_a_real_study(seeded):
    """Backdated through the services' ``now``: the agreement predates the study's start."""
    for study in Study.objects.all():
        revisions = MatrixRevision.objects.filter(study=study).order_by("changed_at")
        assert revisions.count() >= 3
        assert all(rev.changed_at.date() < study.planned_start for rev in revisions), study.code
        assert revisions.last().changed_by.username in {"sponsor_a", "sponsor_b"}


# --- the message history ---------------------------------------------------------------------


def _sponsor_of(item) -> set[str]:
    """The sponsors an inbox item speaks for: its message's, or its digest lines'."""
    if item.kind == DeliveryKind.DIGEST:
        return {line.sponsor_name for line in digest_lines([item.digest_id])[item.digest_id]}
    return {item.message.study.sponsor.name}


def test_site_coord_sees_critical_then_key_pinned_above_digests_across_both_sponsors(seeded):
    items = list(inbox_for_user(user=_user("site_coord")))
    pinned = [item for item in items if item.pin_rank < PIN_NONE]
    assert [item.message.tier for item in pinned] == ["critical", "key", "key"], pinned
    assert items[: len(pinned)] == pinned, "pinned items come first"
    for item in pinned:
        assert item.state != DeliveryState.ACKNOWLEDGED
        assert item.message.ack_due_at > timezone.now(), f"{item.message} is due in the future"
    assert {item.message.study.sponsor.name for item in pinned} == {SPONSOR_A, SPONSOR_B}
    rest = items[len(pinned) :]
    digests = [item for item in rest if item.kind == DeliveryKind.DIGEST]
    assert len(digests) >= 10, "three weeks of routine traffic arrive as daily digests"
    assert set().union(*map(_sponsor_of, digests)) == {SPONSOR_A, SPONSOR_B}
    states = {item.state for item in digests}
    assert {DeliveryState.READ, DeliveryState.DELIVERED} <= states, "some digests read, some not"


def test_site_coord_acknowledges_the_critical_message_and_it_leaves_the_pinned_area(seeded):
    site_coord = _user("site_coord")
    critical = inbox_for_user(user=site_coord).first()
    assert critical.message.tier == "critical"
    delivery_acknowledge(delivery=critical, actor=site_coord)
    first = inbox_for_user(user=site_coord).first()
    assert first.message.tier == "key"
    assert inbox_for_user(user=site_coord).get(pk=critical.pk).pin_rank == PIN_NONE


def test_routine_duplicates_collapse_into_digest_lines_with_counts(seeded):
    digest_ids = Digest.objects.filter(recipient=_user("site_coord")).values_list("id", flat=True)
    lines = [line for found in digest_lines(digest_ids).values() for line in found]
    counts = {line.dedup_key: line.count for line in lines if line.dedup_key}
    assert counts.get("visit-data-101-042") == 3, "one reminder sent three times in one day"
    assert sum(1 for line in lines if line.count > 1) >= 3
    assert any(line.throttled for line in lines), "a 'send now' beyond the daily limit"
    assert Digest.objects.filter(lines_count__lt=F("items_count")).count() >= 5


def test_send_now_reminders_went_alone_up_to_the_daily_limit(seeded):
    alone = Delivery.objects.filter(
        recipient=_user("site_coord"),
        kind=DeliveryKind.MESSAGE,
        channel="in_app",
        via_digest=False,
        message__tier="routine",
    )
    assert alone.count() >= 2
    assert Delivery.objects.filter(throttled=True, via_digest=True).exists()


def test_a_cra_out_of_role_message_waits_for_sponsor_a(seeded):
    waiting = pending_approvals_for_user(_user("sponsor_a"))
    from_cra = [
        message
        for message in waiting
        if message.sender.role_assignments.active().filter(role="cra", study=message.study).exists()
    ]
    assert from_cra, "a CRA's recruitment push waits for the sponsor"
    message = from_cra[0]
    assert message.status == MessageStatus.PENDING_APPROVAL
    assert message.sender.username in {"cra_1", "cra_2"}
    assert message.category == "recruitment_push"  # Meridian is only Consulted on it
    assert not pending_approvals_for_user(_user("cro_pm")).filter(pk=message.pk).exists()


def test_a_cra_draft_was_rejected_by_the_accountable_sponsor_with_a_reason(seeded):
    rejected = Message.objects.get(status=MessageStatus.REJECTED)
    decision = rejected.decisions.get()
    assert rejected.sender.username.startswith("cra_")
    assert decision.decision == "rejected" and decision.reason
    assert decision.decided_by.username == "sponsor_b"
    assert not rejected.deliveries.exists()


def test_cro_key_messages_endorsed_by_the_sponsor_lead_and_one_waiting(seeded):
    endorsed = Message.objects.filter(endorsed_by__isnull=False)
    assert endorsed.filter(sender_organization__name=MERIDIAN, tier="key").exists()
    for message in endorsed:
        lead = "sponsor_a" if message.study.sponsor.name == SPONSOR_A else "sponsor_b"
        assert message.endorsed_by.username == lead
    waiting = Message.objects.filter(endorsement_requested=True, endorsed_by__isnull=True)
    assert waiting.filter(status=MessageStatus.SENT).count() == 1


def test_overdue_acknowledgements_were_escalated_at_their_due_time(seeded):
    escalations = Delivery.objects.filter(kind=DeliveryKind.ESCALATION, channel="in_app")
    assert escalations.exists()
    overdue = Delivery.objects.filter(kind=DeliveryKind.MESSAGE, escalated_at__isnull=False)
    assert overdue.filter(acknowledged_at__isnull=True).exists(), "one never acknowledged"
    assert overdue.filter(acknowledged_at__isnull=False).exists(), "some acknowledged late"
    for delivery in overdue.select_related("message"):
        assert delivery.escalated_at == delivery.message.ack_due_at
        assert delivery.acknowledged_at is None or delivery.acknowledged_at > delivery.escalated_at
        told = set(
            escalations.filter(
                message=delivery.message, study_site=delivery.study_site
            ).values_list("recipient_id", flat=True)
        )
        assert delivery.message.sender_id in told
    on_time = Delivery.objects.filter(
        kind=DeliveryKind.MESSAGE, escalated_at__isnull=True, acknowledged_at__isnull=False
    )
    assert on_time.count() > overdue.count(), "most sites acknowledge on time"


def test_a_safety_communication_was_acknowledged_by_the_sites(seeded):
    safety = Message.objects.filter(category="safety", status=MessageStatus.SENT)
    assert {message.study.sponsor.name for message in safety} == {SPONSOR_A, SPONSOR_B}
    past = safety.filter(ack_due_at__lt=seeded["started"]).get()
    acknowledged = past.deliveries.filter(state=DeliveryState.ACKNOWLEDGED, channel="in_app")
    assert acknowledged.count() >= 4 and past.tier == "critical"


def test_a_cro_message_from_a_sponsor_approved_template_went_without_approval(seeded):
    message = Message.objects.get(template__isnull=False)
    assert message.template.status == "approved"
    assert message.template.approved_by.username == "sponsor_a"
    assert message.sender_organization.name == MERIDIAN and message.category == "recruitment_push"
    assert message.status == MessageStatus.SENT and not message.decisions.exists()


def test_history_spans_six_weeks_in_the_past_and_leaves_only_future_work_pending(seeded):
    started = seeded["started"]
    sent = Message.objects.filter(sent_at__isnull=False)
    oldest = sent.earliest("sent_at").sent_at
    assert started - datetime.timedelta(days=49) < oldest < started - datetime.timedelta(days=35)
    assert sent.filter(sent_at__gt=started).count() == 0
    pending = Delivery.objects.filter(state=DeliveryState.PENDING)
    assert not pending.filter(due_at__lte=started).exists(), "nothing due is left undelivered"
    assert not pending.filter(channel="email", kind=DeliveryKind.DIGEST).exists()


def test_second_run_leaves_the_message_history_as_it_was(seeded):
    """Not only as many rows: no message sent again, no delivery moved on, no digest rebuilt."""
    assert seeded["first_history"] == seeded["second_history"]
    assert seeded["first_history"]["digest items"]["items"] > 0


# --- the routine flood: what digests are for -------------------------------------------------


def _site_people() -> dict[int, str]:
    return dict(
        Membership.objects.filter(organization__kind="site").values_list(
            "user_id", "organization__site__name"
        )
    )


def test_routine_flood_reaches_every_staffed_site_by_the_tens_each_week(seeded):
    """Routine and info messages to each site's people in the last full week (Monday to
    Sunday): tens at every site that has people, as CRAs and CRO systems really send them."""
    today = seeded["started"].astimezone(datetime.UTC).date()
    monday = today - datetime.timedelta(days=today.weekday() + 7)
    week_start = datetime.datetime.combine(monday, datetime.time(), datetime.UTC)
    people = _site_people()
    per_site = dict(
        Delivery.objects.filter(
            kind=DeliveryKind.MESSAGE,
            channel="in_app",
            recipient_id__in=people,
            message__tier__in=("routine", "info"),
            message__sent_at__gte=week_start,
            message__sent_at__lt=week_start + datetime.timedelta(days=7),
        )
        .values_list("study_site__site__name")
        .annotate(n=Count("message", distinct=True))
        .order_by()
    )
    assert set(per_site) == set(people.values()), "every site with people hears the flood"
    assert min(per_site.values()) >= 20, per_site
    assert sum(per_site.values()) >= 250, per_site


def test_site_coords_recent_digests_carry_many_lines_and_repeated_reminders(seeded):
    digests = Digest.objects.filter(
        recipient=_user("site_coord"),
        window_at__gte=seeded["started"] - datetime.timedelta(days=7),
    ).values_list("id", flat=True)
    lines = digest_lines(digests)
    assert len(lines) >= 4, "a digest each working day"
    assert min(map(len, lines.values())) >= 6, {key: len(found) for key, found in lines.items()}
    repeated = [line for found in lines.values() for line in found if line.count > 1]
    assert repeated, "a reminder sent again the same day is one line with a count"
    subjects = {line.subject for found in lines.values() for line in found}
    assert any("patient 101-" in subject for subject in subjects), "reminders name patients"
    assert any("Charité Berlin" in subject for subject in subjects), "{site_name} is filled in"


def test_a_weekly_digest_folds_a_week_of_daily_reminders_into_counted_lines(seeded):
    weekly = Digest.objects.filter(
        recipient__membership__organization__site__digest_frequency="weekly"
    ).values_list("id", flat=True)
    lines = [line for found in digest_lines(weekly).values() for line in found]
    assert max(line.count for line in lines) >= 4, "a reminder re-sent daily, in one line"
    assert any(line.count >= 2 and "patient" in line.subject for line in lines)


def test_site_people_get_at_least_five_times_fewer_notifications_than_messages(seeded):
    """bench/noise.py's measure on the whole history: what reached site people on its own
    (stand-alone messages, digests, escalations) against one notification per message."""
    in_app = Delivery.objects.filter(channel="in_app", recipient_id__in=_site_people())
    messages = in_app.filter(kind=DeliveryKind.MESSAGE)
    escalations = in_app.filter(kind=DeliveryKind.ESCALATION).count()
    alone = (
        messages.filter(via_digest=False).count()
        + in_app.filter(kind=DeliveryKind.DIGEST).count()
        + escalations
    )
    one_per_message = messages.count() + escalations
    assert alone * 5 <= one_per_message, (alone, one_per_message)
    assert not messages.filter(tier__in=("key", "critical"), via_digest=True).exists()
