"""``manage.py seed_demo``: load the demo world of PRODUCT.md "Demo data" (idempotent).

Everything goes through the services, done by whoever does it in real life: each sponsor's
organisation admin names the study's sponsor lead; the lead creates the study, engages the CROs,
staffs the study and agrees the responsibility matrix; the lead CRO's project manager adds the
study-sites and the site staff; each CRO's project manager assigns (and hands over) its CRAs;
site coordinators record training. Every row is first looked up by its natural key (organisation
name, username, study code, study and site, person + role + scope, training title), so a second
run creates nothing and ends nothing twice. One transaction; prints the counts at the end.

The data lives in ``_demo_data``; the sponsor–CRO coordination log (status updates, meetings
and action items) too. The message history — six weeks of messages, approvals, endorsements,
digests, acknowledgements and escalations replayed through the comms services with a
backdated clock — lives in ``_demo_messages`` and is loaded once (skipped when the demo
studies already have messages). The performance data (twelve months of snapshots, Sponsor B's
scorecard settings, last quarter's recognitions, a closed survey, practice notes) lives in
``_demo_performance``.
"""

from __future__ import annotations

import datetime
import functools
import unicodedata

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from comms.models import Delivery, Digest, Message
from performance.models import MetricSnapshot, PracticeNote, Recognition, SurveyResponse
from sites.models import MILESTONE_FIELDS, Site, StudySite, TrainingRecord
from sites.services import site_create, study_site_create, training_record_create
from trialhub.management.commands import _demo_data as demo
from trialhub.management.commands._demo_messages import seed_messages
from trialhub.management.commands._demo_performance import seed_performance
from trialhub.models import (
    ActionItem,
    Area,
    Engagement,
    MatrixRevision,
    Meeting,
    Membership,
    Organization,
    OrganizationKind,
    Raci,
    ResponsibilityEntry,
    RoleAssignment,
    Study,
    StudyRole,
    StudyStatus,
    StudyStatusUpdate,
)
from trialhub.services import (
    action_item_set_done,
    engagement_create,
    meeting_create,
    member_create,
    organization_create,
    responsibility_matrix_set,
    role_assignment_create,
    role_assignment_end,
    status_update_create,
    study_create,
)

User = get_user_model()
Organizations = dict[str, Organization]  # by the short keys of ``_demo_data``


class Command(BaseCommand):
    help = "Load the demo organisations, people, studies, sites and role history (idempotent)."

    def handle(self, *args, **options) -> None:
        before = _counts()
        seed_demo(today=timezone.localdate())
        for label, total in _counts().items():
            self.stdout.write(f"{label:<26}{total:>5}  (+{total - before[label]} this run)")


@transaction.atomic
def seed_demo(*, today: datetime.date) -> None:
    organizations = _organizations()
    for row in demo.ORG_ADMINS:
        _member(row, organizations, is_org_admin=True)
    for row in demo.PEOPLE:
        _member(row, organizations)
    _platform_admin()
    for row in demo.STUDIES:
        _study(row, organizations, today)
    for username, role, code, start in demo.STUDY_ROLES:
        study = Study.objects.get(code=code)
        actor = _holder(study, StudyRole.SPONSOR_LEAD)
        _assign(_user(username), role, actor=actor, study=study, start=_ago(today, start))
    for row in demo.STUDIES:
        _matrix(row, organizations)
    _study_sites(organizations, today)
    _site_staff(organizations)
    _cra_tenures(organizations, today)
    _training(organizations, today)
    _coordination(today)
    seed_messages(now=timezone.now())
    seed_performance(now=timezone.now())  # after the messages: key_ack_hours reads them


def _ago(today: datetime.date, months: float) -> datetime.date:
    """The date ``months`` before today (negative: after), counting average-length months."""
    return today - datetime.timedelta(days=round(months * 30.44))


def _user(username: str):
    return User.objects.select_related("membership__organization").get(username=username)


def _holder(study: Study, role: str, *, organization=None, study_site=None):
    """Who holds ``role`` on the study today (the longest-serving one): the actor of a write."""
    assignments = RoleAssignment.objects.active().filter(study=study, role=role)
    if organization is not None:
        assignments = assignments.filter(user__membership__organization=organization)
    if study_site is not None:
        assignments = assignments.filter(study_site=study_site)
    return assignments.select_related("user").earliest("start_date", "id").user


def _organizations() -> Organizations:
    organizations = {
        key: _organization(kind=kind, name=name, country=country, time_zone=time_zone)
        for key, (kind, name, country, time_zone) in demo.COMPANIES.items()
    }
    for key, profile in demo.SITES.items():
        organizations[key] = _site(profile).organization
    return organizations


def _organization(**fields) -> Organization:
    return Organization.objects.filter(name=fields["name"]).first() or organization_create(**fields)


def _site(profile: dict) -> Site:
    organization = _organization(
        kind=OrganizationKind.SITE,
        name=profile["institution"],
        country=profile["country"],
        time_zone=profile["time_zone"],
    )
    return Site.objects.filter(organization=organization).first() or site_create(
        organization=organization, **profile
    )


def _member(row: tuple, organizations: Organizations, *, is_org_admin: bool = False) -> None:
    username, organization_key, first_name, last_name, job_title = row
    if User.objects.filter(username=username).exists():
        return
    member_create(
        organization=organizations[organization_key],
        username=username,
        password=None,
        password_hash=_demo_password_hash(),
        first_name=first_name,
        last_name=last_name,
        email=_email(first_name, last_name),
        job_title=job_title,
        is_org_admin=is_org_admin,
    )


@functools.cache
def _demo_password_hash() -> str:
    """One hash for the shared demo password: hashing each of 20+ users would take seconds."""
    return make_password(demo.DEMO_PASSWORD)


def _email(first_name: str, last_name: str) -> str:
    local = f"{first_name}.{last_name}".lower().replace(" ", "").replace("'", "")
    return unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode() + "@example.org"


def _platform_admin() -> None:
    username, first_name, last_name = demo.ADMIN
    if User.objects.filter(username=username).exists():
        return
    # No service creates platform administrators: they belong to no organisation, so Django's
    # own superuser creation is the way in (as `createsuperuser` would do).
    User.objects.create_superuser(
        username=username,
        email=f"{username}@example.org",
        password=demo.DEMO_PASSWORD,
        first_name=first_name,
        last_name=last_name,
    )


def _study(row: dict, organizations: Organizations, today: datetime.date) -> None:
    lead_username, lead_since = row["lead"]
    lead = _user(lead_username)
    study = Study.objects.filter(code=row["code"]).first() or study_create(
        sponsor=organizations[row["sponsor"]],
        code=row["code"],
        title=row["title"],
        phase=row["phase"],
        therapeutic_area=row["therapeutic_area"],
        enrolment_target=row["enrolment_target"],
        planned_start=_ago(today, row["start_ago"]),
        planned_end=_ago(today, -row["end_in"]),
        status=StudyStatus.ENROLLING,
        actor=lead,
        now=_morning(_ago(today, row["start_ago"] + 60)),
    )
    # The sponsor's organisation admin names the lead; from then on the lead runs the study.
    org_admin = User.objects.filter(
        membership__organization=study.sponsor, membership__is_org_admin=True
    ).earliest("id")
    start = _ago(today, lead_since)
    _assign(lead, StudyRole.SPONSOR_LEAD, actor=org_admin, study=study, start=start)
    for cro_key, scope in row["cros"].items():
        cro = organizations[cro_key]
        if not Engagement.objects.filter(study=study, cro=cro).exists():
            engagement_create(
                study=study,
                cro=cro,
                scope=scope,
                start_date=study.planned_start,
                actor=lead,
                now=_morning(study.planned_start - datetime.timedelta(days=45)),
            )


def _morning(day: datetime.date) -> datetime.datetime:
    """09:00 UTC on ``day``: when backdated events of the demo history happened."""
    return datetime.datetime.combine(day, datetime.time(9), tzinfo=datetime.UTC)


def _assign(user, role: str, *, actor, start, study=None, study_site=None, end=None, reason=""):
    """Give ``user`` the role from ``start`` (and end it on ``end``) unless a run did before."""
    assignment = RoleAssignment.objects.filter(
        user=user, role=role, study=study or study_site.study, study_site=study_site
    ).first()
    if assignment is None:
        assignment = role_assignment_create(
            actor=actor, user=user, role=role, study=study, study_site=study_site, start_date=start
        )
    if end is not None and assignment.end_date is None:
        role_assignment_end(assignment=assignment, actor=actor, reason=reason, on=end)


def _matrix(row: dict, organizations: Organizations) -> None:
    """The agreed matrix, set once by the sponsor lead beside the initial revisions."""
    study = Study.objects.get(code=row["code"])
    if MatrixRevision.objects.filter(study=study, note=demo.MATRIX_NOTE).exists():
        return
    entries = [
        {"area": area, "organization": study.sponsor_id, "code": Raci.ACCOUNTABLE}
        for area in Area.values
    ]
    entries += [
        {"area": area, "organization": organizations[cro_key].id, "code": code}
        for cro_key in row["cros"]
        for area, code in demo.CRO_MATRIX_CODES[cro_key].items()
    ]
    actor = _holder(study, StudyRole.SPONSOR_LEAD)
    responsibility_matrix_set(
        study=study,
        entries=entries,
        actor=actor,
        note=demo.MATRIX_NOTE,
        now=_morning(study.planned_start - datetime.timedelta(days=30)),  # agreed at kick-off
    )


def _study_site(code: str, site_key: str, organizations: Organizations) -> StudySite:
    return StudySite.objects.select_related("study").get(
        study__code=code, site__organization=organizations[site_key]
    )


def _study_sites(organizations: Organizations, today: datetime.date) -> None:
    for code, rows in demo.STUDY_SITES.items():
        study = Study.objects.get(code=code)
        actor = _holder(study, StudyRole.CRO_PM, organization=organizations[demo.LEAD_CRO])
        for site_key, number, status, target, milestones in rows:
            site = Site.objects.get(organization=organizations[site_key])
            if StudySite.objects.filter(study=study, site=site).exists():
                continue
            dates = zip(MILESTONE_FIELDS[: len(milestones)], milestones, strict=True)
            study_site_create(
                study=study,
                site=site,
                enrolment_target=target,
                actor=actor,
                site_number=number,
                status=status,
                **{field: _ago(today, months) for field, months in dates},
            )


def _site_staff(organizations: Organizations) -> None:
    lead_cro = organizations[demo.LEAD_CRO]
    for username, role, codes in demo.SITE_STAFF:
        user = _user(username)
        for code in codes:
            study_site = StudySite.objects.select_related("study").get(
                study__code=code, site__organization=user.membership.organization
            )
            actor = _holder(study_site.study, StudyRole.CRO_PM, organization=lead_cro)
            _assign(user, role, actor=actor, study_site=study_site, start=study_site.selected_on)


def _cra_tenures(organizations: Organizations, today: datetime.date) -> None:
    """CRAs in turn per study-site, each handed over by the project manager of the CRA's CRO."""
    for (code, site_key), tenures in demo.CRA_TENURES.items():
        study_site = _study_site(code, site_key, organizations)
        for username, start, end, reason in tenures:
            cra = _user(username)
            actor = _holder(
                study_site.study, StudyRole.CRO_PM, organization=cra.membership.organization
            )
            _assign(
                cra,
                StudyRole.CRA,
                actor=actor,
                study_site=study_site,
                start=_ago(today, start),
                end=None if end is None else _ago(today, end),
                reason=reason,
            )


def _training(organizations: Organizations, today: datetime.date) -> None:
    for code, site_key, username, kind, title, months in demo.TRAINING:
        study_site = _study_site(code, site_key, organizations)
        user = _user(username)
        if TrainingRecord.objects.filter(
            study_site=study_site, user=user, kind=kind, title=title
        ).exists():
            continue
        coordinator = _holder(study_site.study, StudyRole.SITE_COORDINATOR, study_site=study_site)
        training_record_create(
            study_site=study_site,
            user=user,
            kind=kind,
            title=title,
            completed_on=_ago(today, months),
            actor=coordinator,
        )


def _coordination(today: datetime.date) -> None:
    """Status updates and meetings with action items, posted by their authors back then; the
    items marked done by their owners on the day they were done."""
    for row in demo.STATUS_UPDATES:
        study, author = Study.objects.get(code=row["study"]), _user(row["author"])
        if StudyStatusUpdate.objects.filter(
            study=study, author=author, highlights=row["highlights"]
        ).exists():
            continue
        start, end = row["period"]
        status_update_create(
            study=study,
            actor=author,
            period_start=_ago(today, start),
            period_end=_ago(today, end),
            highlights=row["highlights"],
            risks=row["risks"],
            asks=row["asks"],
            now=_morning(_ago(today, row["posted"])),
        )
    for row in demo.MEETINGS:
        study = Study.objects.get(code=row["study"])
        meeting = Meeting.objects.filter(study=study, title=row["title"]).first()
        if meeting is None:
            held_on = _ago(today, row["held"])
            meeting = meeting_create(
                study=study,
                actor=_user(row["recorded_by"]),
                held_on=held_on,
                title=row["title"],
                attendees=row["attendees"],
                notes=row["notes"],
                action_items=[
                    {"description": text, "owner": _user(owner), "due_date": _ago(today, due)}
                    for text, owner, due, _ in row["action_items"]
                ],
                now=_morning(held_on),
            )
        for text, owner, _, done in row["action_items"]:
            item = ActionItem.objects.get(meeting=meeting, description=text)
            if done is not None and not item.done:
                action_item_set_done(
                    action_item=item, actor=_user(owner), done=True, now=_morning(_ago(today, done))
                )


def _counts() -> dict[str, int]:
    today = timezone.localdate()
    return {
        "organisations": Organization.objects.count(),
        "people in organisations": Membership.objects.count(),
        "studies": Study.objects.count(),
        "engagements": Engagement.objects.count(),
        "sites": Site.objects.count(),
        "study-sites": StudySite.objects.count(),
        "matrix entries": ResponsibilityEntry.objects.count(),
        "matrix revisions": MatrixRevision.objects.count(),
        "role assignments, active": RoleAssignment.objects.active().count(),
        "role assignments, ended": RoleAssignment.objects.filter(end_date__lte=today).count(),
        "training records": TrainingRecord.objects.count(),
        "status updates": StudyStatusUpdate.objects.count(),
        "meetings": Meeting.objects.count(),
        "messages": Message.objects.count(),
        "digests": Digest.objects.count(),
        "deliveries": Delivery.objects.count(),
        "metric snapshots": MetricSnapshot.objects.count(),
        "recognitions": Recognition.objects.count(),
        "survey answers": SurveyResponse.objects.count(),
        "practice notes": PracticeNote.objects.count(),
    }
