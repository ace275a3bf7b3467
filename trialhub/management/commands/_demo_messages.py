"""The demo's message history (PRODUCT.md "Demo data"): six weeks of communications on the
three demo studies, replayed through the ``comms`` services with a backdated clock.

Who writes what follows each study's responsibility matrix in ``_demo_data``: Meridian's
CRAs and project manager send the routine floods, protocol amendments and milestones (it is
Responsible for those areas), each sponsor lead speaks on safety and recruitment (its
Accountable areas), and a Meridian recruitment push goes to the sponsor for approval (Meridian
is only Consulted there) — once approved, once rejected, once still waiting.

The replay is a clock: every send, decision, endorsement and acknowledgement is an event at
its own instant, and the digest windows and acknowledgement due times that the sends create
become events too, run in time order — as beat would have run them — up to ``now``. So the
digests hold what was waiting at each window, an acknowledgement after its due time comes
after its escalation, and what is due after ``now`` (tomorrow's digest, today's key messages)
is left for the live system. Emails of the history go through the delivery services too, to
a backend that discards them: they belong to the past, and a pending one would be mailed by
the sweeper when the demo starts.

Idempotent as a whole: when any demo study has a message, the history is not replayed.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.test.utils import override_settings

from comms.models import (
    ACK_TIERS,
    Category,
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Message,
    MessageStatus,
    MessageTemplate,
)
from comms.services import (
    delivery_acknowledge,
    delivery_mark_read,
    digest_emails_deliver,
    digests_build,
    escalations_sweep,
    message_approve,
    message_deliver,
    message_draft_create,
    message_endorse,
    message_reject,
    message_send,
    message_template_approve,
    message_template_create,
    study_comms_policy_set,
)
from comms.services.scheduling import SCHEDULE_FIELDS, SiteSchedule, next_digest_window
from sites.models import Site, StudySite
from trialhub.management.commands import _demo_data as demo
from trialhub.models import Study

User = get_user_model()
ONC, CAR, NEU = demo.ONC, demo.CAR, demo.NEU
UTC = datetime.UTC
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
DISCARD_EMAILS = "django.core.mail.backends.dummy.EmailBackend"

# Working days of routine traffic before today: the whole six weeks of the history.
FLOOD_WORKDAYS = 30
SEED = 301  # the random choices are fixed: every load tells the same story


@dataclass(frozen=True)
class Planned:
    """One message of the history: who sends what to whom, when, and what happens next.

    ``sent``: ``("workday", n, "HH:MM")`` — the n-th working day before today, UTC — or
    ``("hours", h)`` — ``h`` hours before now. ``audience`` names study-sites by their site
    keys in ``_demo_data``. ``acks``: hours from delivery to each named recipient's
    acknowledgement (``None``: never); the others acknowledge in good time when
    ``others_ack``. ``decision``: ``(approve|reject, decider, hours after submission,
    reason)`` for a message the matrix sends for approval. ``endorse``: ``(sponsor lead, hours
    after sending)``.
    """

    study: str
    sender: str
    category: str
    subject: str
    body: str
    sent: tuple
    audience: dict = field(default_factory=lambda: {"all_sites": True})
    dedup_key: str = ""
    send_now: bool = False
    ack_within_hours: float | None = None
    endorsement_requested: bool = False
    endorse: tuple[str, float] | None = None
    decision: tuple[str, str, float, str] | None = None
    acks: dict = field(default_factory=dict)
    others_ack: bool = True
    template: str = ""  # name of a template of the study the message is written from
    due_date: datetime.date | None = None


def seed_messages(*, now: datetime.datetime) -> None:
    """Replay the demo's message history up to ``now`` (see the module docstring), unless
    the demo studies have messages already. Runs inside ``seed_demo``'s transaction."""
    if Message.objects.filter(study__code__in=(ONC, CAR, NEU)).exists():
        return
    with override_settings(EMAIL_BACKEND=DISCARD_EMAILS):
        replay = _Replay(now)
        replay.setup()
        for planned in (*_key_messages(replay), *_routine_floods(replay)):
            replay.plan(planned)
        replay.plan_digest_windows()
        replay.run()
        replay.read_old_items()


class _Replay:
    """The event queue and the services' backdated calls."""

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now
        self.today = now.astimezone(UTC).date()
        self.rng = random.Random(SEED)
        self._events: list[tuple] = []
        self._order = itertools.count()
        self._digest_windows: set[datetime.datetime] = set()
        self._sweeps: set[datetime.datetime] = set()
        self._users: dict[str, object] = {}
        self.studies = {
            study.code: study for study in Study.objects.filter(code__in=(ONC, CAR, NEU))
        }
        site_keys = {profile["name"]: key for key, profile in demo.SITES.items()}
        self.study_sites = {
            (code, site_keys[name]): pk
            for code, name, pk in StudySite.objects.filter(
                study__code__in=self.studies
            ).values_list("study__code", "site__name", "id")
        }
        self.workdays = [
            day
            for day in (self.today - offset * DAY for offset in range(1, 70))
            if day.weekday() < 5
        ]

    # --- time ------------------------------------------------------------------------------

    def workday(self, n: int) -> datetime.date:
        """The n-th working day before today (1: the last one)."""
        return self.workdays[n - 1]

    def when(self, sent: tuple) -> datetime.datetime:
        if sent[0] == "hours":
            return self.now - sent[1] * HOUR
        _, n, clock = sent
        hour, minute = map(int, clock.split(":"))
        return datetime.datetime.combine(self.workday(n), datetime.time(hour, minute), UTC)

    def schedule(self, at: datetime.datetime, action: Callable, *args) -> None:
        heapq.heappush(self._events, (at, next(self._order), action, args))

    def run(self) -> None:
        """Run the events in time order up to now; later ones are left to the live system."""
        while self._events:
            at, _, action, args = heapq.heappop(self._events)
            if at > self.now:
                return
            action(at, *args)

    def plan_digest_windows(self) -> None:
        """Build digests at every digest window of every site from the first event on, as
        beat's sweep would: a routine or info message then needs no look at its deliveries
        to know when they go out (most of the history is routine, so this saves a query
        per message)."""
        start = self._events[0][0]
        schedules = {
            SiteSchedule(*row) for row in Site.objects.values_list(*SCHEDULE_FIELDS).distinct()
        }
        for schedule in schedules:
            window = next_digest_window(schedule, start)
            while window <= self.now:
                if window not in self._digest_windows:
                    self._digest_windows.add(window)
                    self.schedule(window, self._build_digests)
                window = next_digest_window(schedule, window)

    def user(self, username: str):
        # One object per person: ``membership_of`` caches the membership on it.
        if username not in self._users:
            self._users[username] = User.objects.get(username=username)
        return self._users[username]

    # --- before the first message: the sponsors' templates and policy ------------------------

    def setup(self) -> None:
        for study_code, proposer, category, name, subject, body, proposed, approved in TEMPLATES:
            study = self.studies[study_code]
            if MessageTemplate.objects.filter(study=study, name=name).exists():
                continue
            template = message_template_create(
                actor=self.user(proposer),
                study=study,
                category=category,
                name=name,
                subject=subject,
                body=body,
                now=self.when(proposed),
            )
            message_template_approve(
                template=template,
                actor=self.user(_lead(study_code)),
                now=self.when(approved),
            )
        # After the feedback session on message load, Sponsor B allows one stand-alone
        # routine message per site and day on its study; the rest waits for the digest.
        study_comms_policy_set(
            study=self.studies[NEU],
            actor=self.user("sponsor_b"),
            send_now_daily_limit=1,
            now=self.when(("workday", 14, "16:00")),
        )

    # --- messages ----------------------------------------------------------------------------

    def plan(self, planned: Planned) -> None:
        self.schedule(self.when(planned.sent), self._send, planned)

    def _audience(self, planned: Planned) -> dict:
        if "study_sites" not in planned.audience:
            return planned.audience
        ids = [self.study_sites[planned.study, key] for key in planned.audience["study_sites"]]
        return {**planned.audience, "study_sites": ids}

    def _send(self, at: datetime.datetime, planned: Planned) -> None:
        actor = self.user(planned.sender)
        study = self.studies[planned.study]
        fields = {
            "category": planned.category,
            "subject": planned.subject,
            "body": planned.body,
            "dedup_key": planned.dedup_key,
            "send_now": planned.send_now,
            "endorsement_requested": planned.endorsement_requested,
        }
        if planned.template:
            # Subject and body left empty: the draft takes the template's approved wording.
            template = MessageTemplate.objects.get(study=study, name=planned.template)
            fields.update(template=template, due_date=planned.due_date)
        if planned.ack_within_hours is not None:
            fields["ack_due_at"] = at + planned.ack_within_hours * HOUR
        message = message_draft_create(
            actor=actor, study=study, audience=self._audience(planned), now=at, **fields
        )
        message = message_send(message=message, actor=actor, now=at)
        if message.status == MessageStatus.PENDING_APPROVAL:
            if planned.decision is not None:
                hours = planned.decision[2]
                self.schedule(at + hours * HOUR, self._decide, message, planned)
            return
        self._dispatched(at, message, planned)

    def _decide(self, at: datetime.datetime, message: Message, planned: Planned) -> None:
        decision, decider, _, reason = planned.decision
        if decision == "reject":
            message_reject(message=message, actor=self.user(decider), reason=reason, now=at)
            return
        message = message_approve(message=message, actor=self.user(decider), reason=reason, now=at)
        self._dispatched(at, message, planned)

    def _dispatched(self, at: datetime.datetime, message: Message, planned: Planned) -> None:
        """A message went out at ``at``: deliver what is due now (the worker would have), and
        queue its digest windows, deferred deliveries, endorsement, acknowledgements and the
        escalation sweep at its due time."""
        if message.tier in ACK_TIERS or message.send_now:
            message_deliver(message_id=message.id, now=at)
        elif planned.endorse is None:
            return  # bound for digests only, whose windows are planned already
        deliveries = list(
            message.deliveries.filter(kind=DeliveryKind.MESSAGE, channel=Channel.IN_APP)
            .select_related("recipient")
            .order_by("id")
        )
        for delivery in deliveries:
            if delivery.via_digest and delivery.due_at not in self._digest_windows:
                self._digest_windows.add(delivery.due_at)
                self.schedule(delivery.due_at, self._build_digests)
            elif not delivery.via_digest and delivery.due_at > at:  # after quiet hours
                self.schedule(delivery.due_at, self._deliver, message.id)
        if planned.endorse is not None:
            lead, hours = planned.endorse
            self.schedule(at + hours * HOUR, self._endorse, message, lead)
        if not message.requires_ack:
            return
        if message.ack_due_at not in self._sweeps:
            self._sweeps.add(message.ack_due_at)
            self.schedule(message.ack_due_at, self._sweep_escalations)
        window_hours = (message.ack_due_at - at) / HOUR
        for delivery in deliveries:
            username = delivery.recipient.username
            if username in planned.acks:
                hours = planned.acks[username]
            elif planned.others_ack:
                hours = self.rng.uniform(0.05, 0.6) * window_hours
            else:
                hours = None
            if hours is not None:
                self.schedule(max(delivery.due_at, at) + hours * HOUR, self._ack, delivery.id)

    def _deliver(self, at: datetime.datetime, message_id: int) -> None:
        message_deliver(message_id=message_id, now=at)

    def _endorse(self, at: datetime.datetime, message: Message, lead: str) -> None:
        message_endorse(message=message, actor=self.user(lead), now=at)

    def _ack(self, at: datetime.datetime, delivery_id: int) -> None:
        delivery = Delivery.objects.select_related("message", "recipient").get(pk=delivery_id)
        delivery_acknowledge(delivery=delivery, actor=delivery.recipient, now=at)

    def _build_digests(self, at: datetime.datetime) -> None:
        digests_build(now=at)
        digest_ids = Delivery.objects.filter(
            kind=DeliveryKind.DIGEST, channel=Channel.EMAIL, state=DeliveryState.PENDING
        ).values_list("digest_id", flat=True)
        digest_emails_deliver(digest_ids=list(digest_ids), now=at)

    def _sweep_escalations(self, at: datetime.datetime) -> None:
        escalations_sweep(now=at)
        escalated = (
            Delivery.objects.filter(kind=DeliveryKind.ESCALATION, state=DeliveryState.PENDING)
            .order_by("message_id")
            .values_list("message_id", flat=True)
            .distinct()
        )
        for message_id in escalated:
            message_deliver(message_id=message_id, now=at)

    # --- after the replay: what people opened ------------------------------------------------

    def read_old_items(self) -> None:
        """What recipients opened, a few hours after it arrived: the site personas everything
        but the last two days' worth (so their inboxes show unread traffic), other site staff
        about a third of their digests and stand-alone reminders, and everyone the escalations
        whose site acknowledged in the end (the one never acknowledged stays unread). Key and
        critical items are opened by acknowledging them."""
        items = (
            Delivery.objects.filter(channel=Channel.IN_APP, state=DeliveryState.DELIVERED)
            .filter(
                Q(kind__in=(DeliveryKind.DIGEST, DeliveryKind.ESCALATION))
                # A digest's lines are read with it.
                | Q(kind=DeliveryKind.MESSAGE, digest__isnull=True, message__requires_ack=False)
            )
            .select_related("recipient")
            .order_by("id")
        )
        acknowledged_sites = set(
            Delivery.objects.filter(
                kind=DeliveryKind.MESSAGE,
                state=DeliveryState.ACKNOWLEDGED,
                escalated_at__isnull=False,
            ).values_list("message_id", "study_site_id")
        )
        personas = {self.user("site_coord").pk, self.user("site_coord_2").pk}
        for item in items:
            if item.kind == DeliveryKind.ESCALATION:
                opened = (item.message_id, item.study_site_id) in acknowledged_sites
            elif item.recipient_id in personas:
                opened = self.now - item.delivered_at > 2 * DAY
            else:
                opened = self.now - item.delivered_at > DAY and self.rng.random() < 0.3
            if opened:
                read_at = min(item.delivered_at + self.rng.uniform(0.3, 6) * HOUR, self.now)
                delivery_mark_read(delivery=item, actor=item.recipient, now=read_at)


def _lead(study_code: str) -> str:
    return next(row["lead"][0] for row in demo.STUDIES if row["code"] == study_code)


def _day(date: datetime.date) -> str:
    return f"{date.day} {date:%B %Y}"


# (study, proposed by, category, name, subject, body, proposed, approved by the sponsor lead)
TEMPLATES = (
    (
        ONC,
        "cro_pm",
        Category.RECRUITMENT_PUSH,
        "Pre-screening push",
        "{study_code}: pre-screen every new stage IV NSCLC referral until {due_date}",
        "Dear {site_name} team,\n\nto keep {study_code} on track we ask every site to pre-screen "
        "all new stage IV non-squamous NSCLC referrals until {due_date}: request EGFR/ALK "
        "results at the first visit, record every patient on the screening log (including "
        "those not approached) and tell your CRA about patients who may become eligible after "
        "the central EGFR result.\n\nThe sponsor's EGFR courier service is available for all "
        "samples. Thank you for your continued commitment.",
        ("workday", 29, "10:00"),
        ("workday", 28, "15:30"),
    ),
)


def _key_messages(replay: _Replay) -> list[Planned]:
    """The hand-written part of the history: key and critical messages, approvals,
    endorsements, the rejected draft and what is still open today."""
    cutoff = replay.today + 12 * DAY
    push_until = replay.workday(11) + 28 * DAY
    return [
        Planned(
            study=ONC,
            sender="cro_pm",
            category=Category.RECRUITMENT_PUSH,
            subject="Recruitment push for Spanish sites: pre-screen every stage IV NSCLC referral",
            body="Dear colleagues at {site_name},\n\nscreen failures at the Spanish sites have "
            "risen to 48% over the last two months, mostly because EGFR results arrive after "
            "the 28-day screening window. From today please request EGFR testing at the "
            "first oncology visit for every new stage IV non-squamous NSCLC patient, before "
            "consent to the study, and log all pre-screened patients on the screening log.\n\n"
            "Your CRA will call you this week to go through the pre-screening pathway.",
            sent=("workday", 28, "09:30"),
            audience={"countries": ["ES"]},
            decision=(
                "approve",
                "sponsor_a",
                26,
                "Approved as discussed at the operations review; my letter on EGFR testing "
                "will follow.",
            ),
        ),
        Planned(
            study=ONC,
            sender="cro_pm",
            category=Category.PROTOCOL_AMENDMENT,
            subject="Protocol amendment 3 (protocol v5.0): revised hepatic monitoring and "
            "new exclusion criterion 14",
            body="Protocol amendment 3 of SPA-ONC-301 (protocol v5.0, dated last Friday) has "
            "been approved by the lead ethics committee. What changes for your site:\n\n"
            "1. Liver function tests (ALT, AST, bilirubin) every 2 weeks during the first 3 "
            "cycles, then every cycle.\n2. New exclusion criterion 14: active hepatitis B or "
            "C infection.\n3. Updated informed consent form v5.0: re-consent patients on "
            "treatment at their next visit.\n\nPlease file the amendment in the ISF, submit it "
            "to your local ethics committee where required, complete the amendment training "
            "in the LMS and acknowledge this message within 7 days.",
            sent=("workday", 22, "10:00"),
            ack_within_hours=7 * 24,
            endorsement_requested=True,
            endorse=("sponsor_a", 1.5),
            # Madrid and Warsaw acknowledged after the due time (and after the escalation).
            acks={"javier.lopez": 7 * 24 + 20, "katarzyna.kowalska": 9 * 24},
        ),
        Planned(
            study=ONC,
            sender="sponsor_a",
            category=Category.SPONSOR_LETTER,
            subject="Sponsor letter: EGFR testing turnaround — central courier now funded",
            body="Dear Investigators,\n\nthank you for your efforts in SPA-ONC-301. To shorten "
            "the time to EGFR results, Sponsor A Pharma now funds a courier from your "
            "pathology department to the central laboratory (results within 5 working days). "
            "Please book it through the laboratory portal for every pre-screened patient.\n\n"
            "Kind regards,\nKatharina Weber, Clinical Lead",
            sent=("workday", 19, "08:45"),
            audience={"countries": ["ES"]},
        ),
        Planned(
            study=ONC,
            sender="cro_pm",
            category=Category.TRAINING,
            subject="Complete the protocol amendment 3 training in the LMS",
            body="Every investigator and coordinator on the delegation log completes the "
            "amendment 3 training module (20 minutes) before treating patients under "
            "protocol v5.0. Upload the certificate to the ISF.",
            sent=("workday", 21, "14:00"),
            dedup_key="training-amendment-3",
        ),
        Planned(
            study=ONC,
            sender="cro_pm",
            category=Category.TRAINING,
            subject="Reminder: amendment 3 training still open at {site_name}",
            body="Our LMS report still shows open amendment 3 training at your site. Please "
            "complete it this week.",
            sent=("workday", 17, "09:10"),
            dedup_key="training-amendment-3",
        ),
        Planned(
            study=ONC,
            sender="sponsor_a",
            category=Category.NEWSLETTER,
            subject="SPA-ONC-301 newsletter: enrolment passes 60% of target",
            body="146 patients randomised to date. Thank you to all sites! In this issue: the "
            "DSMB review, amendment 3 in brief and tips for EGFR pre-screening.",
            sent=("workday", 20, "11:00"),
        ),
        Planned(
            study=ONC,
            sender="sponsor_a",
            category=Category.STUDY_MILESTONE,
            subject="DSMB review passed: SPA-ONC-301 continues unchanged",
            body="The Data Safety Monitoring Board reviewed the unblinded safety data of the "
            "first 140 patients on its meeting last week and recommended that the study "
            "continue without modification. No action is needed at your site beyond "
            "informing your team and filing this letter in the ISF.",
            sent=("workday", 18, "13:00"),
        ),
        Planned(
            study=ONC,
            sender="sponsor_a",
            category=Category.SAFETY,
            subject="Dear Investigator Letter: hepatotoxicity with zelvatinib — Investigator's "
            "Brochure v7 addendum",
            body="Three cases of grade 3 ALT elevation with zelvatinib, one meeting Hy's law "
            "criteria, have been reported across the programme. Until further notice:\n\n"
            "- check ALT, AST and bilirubin before every dose;\n- interrupt zelvatinib for ALT "
            "or AST above 5× ULN and report the event as an SAE within 24 hours;\n- inform "
            "patients using the attached patient information addendum.\n\nThe Investigator's "
            "Brochure v7 addendum is attached. Please acknowledge within 24 hours.",
            sent=("workday", 15, "09:00"),
            acks={"marta.garcia": 30},  # acknowledged after its escalation
        ),
        Planned(
            study=NEU,
            sender="cra_1",
            category=Category.RECRUITMENT_PUSH,
            subject="Refer-a-patient: share our study flyer with your neurology colleagues",
            body="To speed up recruitment, please hand the attached SPB-NEU-201 flyer to "
            "neurologists in your referral network and offer them a call with the PI.",
            sent=("workday", 13, "10:30"),
            audience={"study_sites": ["charite", "vhebron"]},
            decision=(
                "reject",
                "sponsor_b",
                5.5,
                "Recruitment communications come from the sponsor, and only the "
                "ethics-approved referral flyer v2 may be used. I will send the approved "
                "material to all sites next week.",
            ),
        ),
        Planned(
            study=CAR,
            sender="cro_pm",
            category=Category.STUDY_MILESTONE,
            subject="Dose cohort 2 fully enrolled: screening paused until the SRC review",
            body="Cohort 2 (cardiotrelin 40 mg) reached its 40 randomised patients yesterday. "
            "Screening is paused at all sites until the Safety Review Committee meets; "
            "patients already in screening may complete it and be randomised. We expect to "
            "reopen screening for cohort 3 within three weeks.",
            sent=("workday", 12, "09:15"),
            acks={"elodie.bernard": None},  # never acknowledged: escalated
        ),
        Planned(
            study=ONC,
            sender="cro_pm",
            category=Category.RECRUITMENT_PUSH,
            subject="",
            body="",
            sent=("workday", 11, "10:15"),
            audience={"study_sites": ["vhebron", "doce"]},
            template="Pre-screening push",
            due_date=push_until,
        ),
        Planned(
            study=NEU,
            sender="cro_pm",
            category=Category.STUDY_MILESTONE,
            subject="Central MRI reading moves to NeuroRead Imaging: new upload portal",
            body="From Monday, MRI scans are uploaded to the NeuroRead Imaging portal instead "
            "of the previous vendor's. Log-ins have been sent to the imaging contacts of each "
            "site; scans uploaded to the old portal after Friday are not read. Reading "
            "turnaround is 4 working days.",
            sent=("workday", 10, "11:00"),
        ),
        Planned(
            study=NEU,
            sender="cro_pm",
            category=Category.RECOGNITION,
            subject="Recognition: University Hospital Kraków, top enroller of the month",
            body="Kraków randomised 4 patients last month, ahead of its target. Thank you to "
            "Piotr and the team!",
            sent=("workday", 9, "15:00"),
        ),
        Planned(
            study=NEU,
            sender="sponsor_b",
            category=Category.RECRUITMENT_PUSH,
            subject="Recruitment push: 20 patients to go before the enrolment milestone",
            body="Dear investigators,\n\nSPB-NEU-201 needs 20 more randomised patients to "
            "reach its enrolment milestone by the end of next month. Please review your "
            "clinic lists for patients with relapsing-remitting MS diagnosed within the last "
            "3 years, and use the ethics-approved referral flyer v2 (attached) with referring "
            "neurologists.\n\nMaarten Bakker, Clinical Lead, Sponsor B Biotech",
            sent=("workday", 8, "10:00"),
        ),
        Planned(
            study=CAR,
            sender="cro_pm",
            category=Category.PROTOCOL_AMENDMENT,
            subject="Protocol amendment 2 (protocol v3.0): revised NT-proBNP eligibility threshold",
            body="Protocol v3.0 lowers the NT-proBNP inclusion threshold to 220 pg/mL (sinus "
            "rhythm) and 660 pg/mL (atrial fibrillation), and adds a week-2 safety phone call. "
            "Please submit it to your ethics committee where required, re-train your team and "
            "acknowledge within 7 days.",
            sent=("workday", 6, "09:00"),
            ack_within_hours=7 * 24,
            endorsement_requested=True,
            endorse=("sponsor_a", 2),
        ),
        Planned(
            study=CAR,
            sender="sponsor_a",
            category=Category.NEWSLETTER,
            subject="SPA-CAR-202 newsletter: cohort 2 complete",
            body="Cohort 2 is fully enrolled thanks to you. In this issue: what the Safety "
            "Review Committee looks at, and the NT-proBNP change of protocol v3.0.",
            sent=("workday", 5, "12:00"),
        ),
        # --- still open today -----------------------------------------------------------------
        Planned(
            study=ONC,
            sender="cro_pm",
            category=Category.STUDY_MILESTONE,
            subject=f"Interim analysis data cut-off on {_day(cutoff)}: all visits entered, "
            "all queries answered",
            body=f"The interim analysis of SPA-ONC-301 uses the data cut-off of {_day(cutoff)}. "
            "By then please enter every visit up to the cut-off, answer all open queries and "
            "sign the casebooks of patients who ended treatment. Your CRA will plan extra "
            "monitoring days; the query ageing report is updated daily.",
            sent=("hours", 20),
            ack_within_hours=20 + 3 * 24,
            endorsement_requested=True,  # the sponsor lead has not co-signed yet
            acks={"claire.moreau": 3},
            others_ack=False,
        ),
        Planned(
            study=NEU,
            sender="cro_pm",
            category=Category.PROTOCOL_AMENDMENT,
            subject="Protocol amendment 1 (protocol v2.0): revised MRI schedule and new "
            "exclusion criterion",
            body="Protocol v2.0 moves the month-9 MRI to month 12, adds JC virus serology at "
            "screening and excludes patients treated with anti-CD20 therapy within 12 months. "
            "Please submit it to your ethics committee, re-consent patients with ICF v2.0 at "
            "their next visit and acknowledge within 5 days.",
            sent=("hours", 6),
            ack_within_hours=6 + 5 * 24,
            endorsement_requested=True,
            endorse=("sponsor_b", 1),
            acks={"marta.garcia": 2.5},
            others_ack=False,
        ),
        Planned(
            study=NEU,
            sender="sponsor_b",
            category=Category.SAFETY,
            subject="Urgent safety measure: hold neurofenant in patients with lymphocytes "
            "below 0.8 × 10⁹/L",
            body="Following two cases of grade 3 lymphopenia with opportunistic infection, "
            "Sponsor B Biotech implements an urgent safety measure with immediate effect:\n\n"
            "- check the lymphocyte count of every patient on treatment within 7 days;\n- hold "
            "neurofenant if it is below 0.8 × 10⁹/L and repeat the count after 4 weeks;\n"
            "- report any opportunistic infection as an SAE within 24 hours.\n\nThe ethics "
            "committees and competent authorities have been notified. Please acknowledge "
            "within 24 hours.",
            sent=("hours", 2),
            acks={"sabine.kruger": 0.5, "elodie.bernard": 1.2},
            others_ack=False,
        ),
        Planned(
            study=ONC,
            sender="cra_2",
            category=Category.RECRUITMENT_PUSH,
            subject="Lyon and Madrid: one more push on pre-screening before the data cut-off",
            body="Both your sites have patients on the pre-screening log whose EGFR results "
            "came back this month. Please call them in for screening visits before the "
            "interim data cut-off; I can join the screening visits on site.",
            sent=("hours", 3),
            audience={"study_sites": ["lyon", "doce"]},
        ),
    ]


# --- the routine floods ------------------------------------------------------------------------
#
# What a site hears besides the key messages (PRODUCT.md "Priority tiers": routine and info),
# every working day of the six weeks — tens of messages per site and week, as CRAs and CRO
# systems really send them:
#
# - the EDC's and the ePRO system's daily reminders (overdue eCRF pages, open queries, missed
#   patient diaries), one message per study and kind to the study-sites with something
#   overdue that day, worded per site with ``{site_name}``;
# - reminder threads about one patient: a visit whose eCRF pages are overdue or an open query,
#   re-sent every working day under the same dedup key until the site enters the data or
#   answers (one to five days later) — mostly at the personas' sites, where the CRA sometimes
#   chases one again the same day ("3×" in the digest), and at Kraków, whose weekly digest
#   folds a week of them into one line;
# - each CRA's round of her sites on a study: every other week a remote data review (the day
#   before: enter every visit; the day after: answer the new queries), in the weeks between a
#   document chase, and the on-site monitoring visits announced to the sites visited that
#   week — one message to the study-sites it concerns;
# - the CRO project manager's study-wide reminders and notices on fixed weekdays, and on
#   Tuesdays what the whole site team reads (a document the site owes, a training or meeting
#   notice, the sponsor's weekly update, and in turn a protocol clarification letter or a
#   recognition).
#
# Each message goes through ``message_draft_create`` and ``message_send`` (a dozen queries);
# sending to several study-sites at once where a real sender would keeps ``seed_demo`` fast.

VISITS = {
    ONC: (
        "cycle 2 day 1",
        "cycle 4 day 1",
        "cycle 6 day 1",
        "week 12 tumour assessment",
        "end of treatment",
        "follow-up month 3",
    ),
    CAR: ("week 2 phone call", "week 4", "week 12", "week 24 (end of treatment)"),
    NEU: ("month 3 (MRI)", "month 6 (MRI)", "month 9", "month 12 (MRI)", "relapse visit"),
}
# (eCRF form, what the query asks), per study and for every study.
QUERIES = {
    ONC: (
        ("RECIST", "the sum of target lesion diameters does not match the measurements"),
        ("ECOG", "the ECOG performance status is missing at cycle start"),
        ("dosing", "the zelvatinib dose was reduced without a reason"),
    ),
    CAR: (
        ("NT-proBNP", "the central laboratory value differs from the local one entered"),
        ("ECG", "the QTc interval is missing on the week 4 ECG"),
        ("dosing", "the number of returned tablets does not match the dispensing log"),
    ),
    NEU: (
        ("EDSS", "the EDSS total does not match the functional system scores"),
        ("MRI", "the number of new T2 lesions is missing"),
        ("relapse", "the relapse onset date is after the visit date"),
    ),
}
COMMON_QUERIES = (
    ("AE log", "the grade of the adverse event is missing"),
    ("concomitant medication", "the end date of a concomitant medication is missing"),
    ("vital signs", "systolic blood pressure 210 mmHg: please confirm or correct"),
    ("laboratory", "the ALT value was entered without its unit"),
    ("informed consent", "consent is dated after the first study procedure"),
    ("demographics", "the year of birth differs from the screening log"),
)
# What a CRA chases for her next visit (enrolling sites), and from sites still starting up.
DOCUMENTS = (
    ("cv-gcp", "the updated CV and GCP certificate of the new sub-investigator"),
    ("delegation-log", "the signed delegation log page for new site staff"),
    ("temperature-log", "last month's IMP temperature logs"),
    ("accountability", "the pharmacy IMP accountability log"),
    ("screening-log", "the screening and enrolment log up to last Friday"),
    ("sae-follow-up", "the signed follow-up pages of open SAE reports"),
)
STARTUP_DOCUMENTS = (
    ("ethics-approval", "the local ethics committee approval letter"),
    ("cta", "the fully signed clinical trial agreement"),
    ("lab-ranges", "the laboratory normal ranges and accreditation certificate"),
    ("financial-disclosure", "the signed financial disclosure forms of all investigators"),
    ("pharmacy-manual", "the signed pharmacy manual acknowledgement"),
)
COORDINATORS = {"roles": ["site_coordinator"]}
PERSONA_SITES = frozenset({"charite", "lyon"})
# Reminder threads a study-site starts per working day, on average: the personas' own sites
# (Charité for site_coord, Lyon for site_coord_2) are the busiest, and Kraków's weekly digest
# shows what a week of daily re-sent reminders folds into.
NEW_THREADS = {"charite": 0.2, "lyon": 0.2, "krakow": 0.3}
NEW_THREADS_ELSEWHERE = 0.05
# Working days until the site enters the visit or answers the query.
THREAD_DAYS = (1, 2, 2, 3, 3, 4, 5)
CHASES = {1: "Second reminder today:", 2: "Third reminder today:"}  # the CRA's, same day
# Each CRA's remote data review of a study, a fixed weekday (0 = Monday) per study.
REVIEW_WEEKDAY = {
    ("cra_1", ONC): 1,
    ("cra_1", CAR): 2,
    ("cra_1", NEU): 3,
    ("cra_2", ONC): 2,
    ("cra_2", CAR): 3,
    ("cra_2", NEU): 1,
}
MONITORING_EVERY_WEEKS = 4  # an on-site visit per enrolling study-site every four weeks


@dataclass(frozen=True)
class _FloodSite:
    """A study-site with site staff, and who reminds it: its CRA when she works for the
    lead CRO, else the lead CRO's project manager — Meridian runs the EDC's reminders for
    the whole study, and the other CRO is only Consulted in the areas of reminders."""

    study: str
    site: str
    number: str
    status: str
    target: int
    sender: str

    @property
    def busy(self) -> bool:
        return self.site in PERSONA_SITES

    @property
    def patients(self) -> bool:
        return self.status == "enrolling"

    def patient(self, rng: random.Random) -> str:
        return f"{self.number.split('-')[1]}-{rng.randint(1, min(self.target, 45)):03d}"


def _flood_sites() -> list[_FloodSite]:
    organization_of = {username: key for username, key, *_ in demo.PEOPLE}
    staffed = {
        (code, organization_of[username])
        for username, _role, codes in demo.SITE_STAFF
        for code in codes
    }
    current_cra = {
        key: tenures[-1][0] for key, tenures in demo.CRA_TENURES.items() if tenures[-1][2] is None
    }
    sites = []
    for code, rows in demo.STUDY_SITES.items():
        for site, number, status, target, _milestones in rows:
            cra = current_cra.get((code, site))
            if (code, site) in staffed and cra:
                sender = cra if organization_of[cra] == demo.LEAD_CRO else "cro_pm"
                sites.append(_FloodSite(code, site, number, status, target, sender))
    return sites


def _routine_floods(replay: _Replay) -> list[Planned]:
    """Six weeks of routine and info traffic (see the section's comment), then the scripted
    routine messages the demo relies on."""
    rng = random.Random(SEED)
    sites = _flood_sites()
    plans: list[Planned] = []
    for site in sites:
        if site.patients:
            plans += _reminder_threads(rng, site)
    enrolling = {
        code: [site.site for site in sites if site.study == code and site.patients]
        for code in (ONC, CAR, NEU)
    }
    for n in range(FLOOD_WORKDAYS, 0, -1):
        plans += _edc_daily(rng, enrolling, n)
        plans += _cra_rounds(replay, sites, n)
        plans += _study_wide(replay, enrolling, n)
    return plans + _scripted_routine()


# The EDC's and the ePRO system's daily reminders, sent under the CRO project manager's name
# to the study-sites with something overdue that day: (studies, category, dedup key, chance a
# site has something, subject, body). The heart-failure and MS patients keep daily diaries,
# the lung-cancer patients fill in a weekly quality-of-life questionnaire.
EDC_DAILY = (
    (
        (ONC, CAR, NEU),
        Category.VISIT_REMINDER,
        "edc-overdue-pages",
        0.95,
        "EDC: eCRF pages overdue at {site_name}",
        "The EDC lists visits of {site_name} whose eCRF pages are still empty more than 5 "
        "working days after the visit. The overdue-pages report shows which; please enter them.",
    ),
    (
        (ONC, CAR, NEU),
        Category.QUERY_REMINDER,
        "edc-open-queries",
        1.0,
        "EDC: queries awaiting your answer at {site_name}",
        "Queries raised by data management or your CRA are waiting for an answer from "
        "{site_name}. The open-queries report lists them by patient and age.",
    ),
    (
        (CAR, NEU),
        Category.VISIT_REMINDER,
        "epro-compliance",
        0.7,
        "ePRO: patients of {site_name} missed diary entries",
        "The ePRO system shows patients of {site_name} who missed two or more diary entries "
        "in a row. Please call them before their next visit and remind them how to use the "
        "diary app.",
    ),
    (
        (ONC,),
        Category.VISIT_REMINDER,
        "epro-qol",
        0.6,
        "ePRO: quality-of-life questionnaires missing at {site_name}",
        "Patients of {site_name} have not completed their weekly quality-of-life "
        "questionnaire on the tablet. Please ask them to complete it at their next visit, "
        "before they see the investigator.",
    ),
)


def _edc_daily(rng: random.Random, enrolling: dict[str, list[str]], n: int) -> list[Planned]:
    """Working day ``n`` of the systems' reminders: one message per study and kind, to the
    study-sites with something overdue (a different few each day)."""
    return [
        Planned(
            study=code,
            sender="cro_pm",
            category=category,
            subject=subject,
            body=body,
            sent=("workday", n, "10:30"),
            audience={"study_sites": audience, **COORDINATORS},
            dedup_key=f"{key}-{code}",
        )
        for code, study_sites in enrolling.items()
        for studies, category, key, chance, subject, body in EDC_DAILY
        if code in studies and (audience := [site for site in study_sites if rng.random() < chance])
    ]


def _reminder_threads(rng: random.Random, site: _FloodSite) -> list[Planned]:
    """The EDC reminders of one study-site over the flood: threads start on working days,
    each re-sent every working day until the site resolves it (or today)."""
    plans: list[Planned] = []
    rate = NEW_THREADS.get(site.site, NEW_THREADS_ELSEWHERE)
    query_number = itertools.count(rng.randint(3000, 5000), 7)
    for start in range(FLOOD_WORKDAYS, 0, -1):
        for _ in range(int(rate) + (rng.random() < rate % 1)):
            days = min(rng.choice(THREAD_DAYS), start)
            if rng.random() < 0.55:
                wording = _visit_wording(rng, site)
            else:
                wording = _query_wording(rng, site, next(query_number))
            for age in range(days):
                plans += _thread_day(rng, site, start - age, age, *wording)
    return plans


def _visit_wording(rng: random.Random, site: _FloodSite) -> tuple:
    patient, visit = site.patient(rng), rng.choice(VISITS[site.study])
    key = f"visit-{patient}-{visit.split(' (')[0].replace(' ', '-')}"

    def subject(age: int) -> str:
        if age == 0:
            return f"Enter visit data for patient {patient} ({visit}) in the EDC"
        return f"Visit data for patient {patient} ({visit}): {5 + age} working days overdue"

    body = (
        f"The {visit} visit of patient {patient} took place more than 5 working days ago and "
        "its eCRF pages are still empty. Please enter them before the next remote review."
    )
    return Category.VISIT_REMINDER, key, subject, body


def _query_wording(rng: random.Random, site: _FloodSite, number: int) -> tuple:
    patient = site.patient(rng)
    form, question = rng.choice(QUERIES[site.study] + COMMON_QUERIES)
    query = f"{site.number.split('-')[1]}-Q{number}"

    def subject(age: int) -> str:
        if age == 0:
            return f"Query {query} on patient {patient} ({form}): please answer"
        return f"Query {query} on patient {patient} ({form}) open for {7 + age} days"

    body = (
        f"Query {query} on the {form} page of patient {patient} is still open: {question}. "
        "Please answer it in the EDC or tell your CRA if the source needs checking."
    )
    return Category.QUERY_REMINDER, f"query-{query}", subject, body


def _thread_day(
    rng: random.Random, site: _FloodSite, n: int, age: int, category, key, subject, body
) -> list[Planned]:
    """One working day of a thread: the morning reminder, and at a busy site sometimes the
    CRA's own chase later that day (one digest line with a count)."""
    times = [f"{rng.randint(8, 10):02d}:{rng.randint(0, 59):02d}"]
    if site.busy and age > 0 and rng.random() < 0.4:
        times.append(f"{rng.randint(12, 13):02d}:{rng.randint(0, 59):02d}")
        if rng.random() < 0.4:
            times.append(f"{rng.randint(15, 16):02d}:{rng.randint(0, 59):02d}")
    return [
        Planned(
            study=site.study,
            sender=site.sender,
            category=category,
            subject=subject(age) if index == 0 else f"{CHASES[index]} {_lower_first(subject(age))}",
            body=body,
            sent=("workday", n, clock),
            audience={"study_sites": [site.site], **COORDINATORS},
            dedup_key=key,
        )
        for index, clock in enumerate(times)
    ]


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


def _cra_rounds(replay: _Replay, sites: list[_FloodSite], n: int) -> list[Planned]:
    """Working day ``n`` of each CRA's round of her study-sites, one message per study to the
    study-sites it concerns."""
    day = replay.workday(n)
    week = (replay.today - day).days // 7
    plans: list[Planned] = []
    for turn, ((cra, study), weekday) in enumerate(REVIEW_WEEKDAY.items(), start=week):
        mine = [site for site in sites if site.sender == cra and site.study == study]
        enrolling = [site.site for site in mine if site.patients]
        # An activated site has its ISF but no patient yet; the others are still starting up.
        filing = [site.site for site in mine if site.status in ("enrolling", "activated")]
        starting = [site.site for site in mine if site.status in ("selected", "startup")]

        def plan(category, subject, body, key, audience, clock, study=study, cra=cra):
            plans.append(
                Planned(
                    study=study,
                    sender=cra,
                    category=category,
                    subject=subject,
                    body=body,
                    sent=("workday", n, clock),
                    audience={"study_sites": audience, **COORDINATORS},
                    dedup_key=key,
                )
            )

        # Every other week a remote data review, in the weeks between a document chase.
        review_week = turn % 2 == 0
        if review_week and enrolling and day.weekday() == weekday - 1:
            plan(
                Category.VISIT_REMINDER,
                "Remote data review at {site_name} tomorrow: enter every visit up to last Friday",
                "Tomorrow I review the EDC of {site_name} remotely. Please enter every visit "
                "up to last Friday and answer the open queries, so that I can verify them.",
                f"remote-review-{study}",
                enrolling,
                "14:30",
            )
        if review_week and enrolling and day.weekday() == weekday + 1:
            plan(
                Category.QUERY_REMINDER,
                "New queries from yesterday's remote review at {site_name}",
                "Yesterday's remote review raised new queries at {site_name}. Please answer "
                "them in the EDC within 5 working days.",
                f"review-queries-{study}",
                enrolling,
                "09:15",
            )
        # On-site monitoring visits: each enrolling study-site every four weeks, announced a
        # week before, on the review weekday.
        visited = [
            site
            for index, site in enumerate(enrolling)
            if (week + index) % MONITORING_EVERY_WEEKS == 0
        ]
        if visited and day.weekday() == weekday:
            visit_day = day + 7 * DAY
            plan(
                Category.SCHEDULING,
                f"Monitoring visit at {{site_name}} on {visit_day:%A} {_day(visit_day)}: "
                "please confirm",
                f"I plan an on-site monitoring visit at {{site_name}} on {_day(visit_day)}, "
                "09:00 to 16:00. Please confirm the date, book a room with internet access "
                "and ask the pharmacy for an hour in the afternoon.",
                f"monitoring-visit-{study}-{visit_day:%Y%m%d}",
                visited,
                "11:00",
            )
        if not review_week and day.weekday() == 4:
            slug, document = DOCUMENTS[turn // 2 % len(DOCUMENTS)]
            if filing:
                plan(
                    Category.DOCUMENT_REQUEST,
                    f"Please file {document} in the ISF",
                    f"For my next visit, please file {document} at {{site_name}} and upload "
                    "a copy to the eTMF.",
                    f"doc-{slug}",
                    filing,
                    "15:00",
                )
            if starting:
                slug, document = STARTUP_DOCUMENTS[turn // 2 % len(STARTUP_DOCUMENTS)]
                plan(
                    Category.DOCUMENT_REQUEST,
                    f"Site activation: {document} still missing",
                    f"Before {{site_name}} can be activated we still need {document}. "
                    "Please upload it to the eTMF or tell me when to expect it.",
                    f"activation-{slug}",
                    starting,
                    "15:10",
                )
    return plans


# The CRO project manager's study-wide reminders to the coordinators, on fixed weekdays
# (0 = Monday): (category, subject, body, dedup key) — the same key every week.
STUDY_WIDE = {
    0: (
        Category.VISIT_REMINDER,
        "Weekly reminder: enter last week's visits in the EDC within 5 working days",
        "The data-entry guideline asks for every visit to be entered within 5 working days. "
        "The EDC overdue-pages report of {site_name} is attached.",
        "edc-weekly-entry",
    ),
    2: (
        Category.QUERY_REMINDER,
        "Query ageing at {site_name}: answer queries open for more than 14 days",
        "Queries open for more than 14 days delay the data cleaning. Please answer them in the "
        "EDC or tell your CRA which ones need a source check.",
        "query-ageing",
    ),
}
# Thursdays: a notice from the CRO's systems, by week.
NOTICES = (
    (
        Category.SCHEDULING,
        "EDC release on Saturday 08:00–12:00 CET: the EDC is unavailable",
        "The EDC moves to its new release on Saturday morning; entries made during the "
        "downtime are lost. The new query workflow is described in the attached note.",
        "edc-release",
    ),
    (
        Category.SCHEDULING,
        "IRT maintenance on Sunday night: randomise before 21:00 CET",
        "The IRT is unavailable on Sunday between 22:00 and 02:00 CET.",
        "irt-maintenance",
    ),
    (
        Category.DOCUMENT_REQUEST,
        "Central laboratory kits expiring at month end at {site_name}: order replacements",
        "The central laboratory's inventory shows kits at {site_name} that expire at the end "
        "of the month. Please order replacements on the laboratory portal and discard the "
        "expired ones.",
        "lab-kits",
    ),
    (
        Category.DOCUMENT_REQUEST,
        "Monthly IMP temperature logs of {site_name} due on Monday",
        "Please upload the pharmacy and fridge temperature logs of the last month to the eTMF, "
        "with any excursion documented on the excursion form.",
        "temperature-logs",
    ),
)
# Tuesdays, to the whole site team (coordinators and investigators): a document the site
# owes, a training or meeting notice, and the sponsor's newsletter or the CRO's recognition
# in turn — the study's communication plan bundles what investigators read on one day.
STUDY_DOCUMENTS = (
    ("Annual update: investigators' financial disclosure forms", "financial-disclosure"),
    ("Please confirm the ISF holds Investigator's Brochure v7 and its addendum", "ib-v7"),
    ("Site staff list and delegation log: quarterly check", "staff-list"),
    ("Please send your site's enrolment forecast for next quarter", "forecast"),
    ("Upload the current GCP certificates of all investigators", "gcp-certificates"),
    ("Please confirm your site's local laboratory normal ranges are current", "lab-ranges"),
)
TEAM_NOTICES = (
    (
        Category.TRAINING,
        "New eCRF completion guidelines: 20-minute refresher in the LMS",
        "The eCRF completion guidelines changed for the concomitant medication and AE pages. "
        "Please complete the refresher module before entering new visits.",
        "ecrf-guidelines",
    ),
    (
        Category.SCHEDULING,
        "Investigator meeting in Frankfurt: please register your team",
        "The investigator meeting takes place in Frankfurt in eight weeks. Please register the "
        "PI and one coordinator of {site_name} through the meeting portal.",
        "investigator-meeting",
    ),
    (
        Category.TRAINING,
        "ICH E6(R3) GCP refresher for investigators and coordinators",
        "The revised GCP guideline applies to the study from next month. The 45-minute "
        "refresher module is in the LMS; please upload the certificates to the ISF.",
        "gcp-refresher",
    ),
)
# Every other Tuesday the CRO issues a protocol clarification letter: (number, topic).
CLARIFICATIONS = {
    ONC: (
        (7, "how to record zelvatinib dose interruptions"),
        (8, "RECIST assessments outside the visit window"),
        (9, "EGFR results from local laboratories"),
    ),
    CAR: (
        (4, "NT-proBNP samples taken after a change of diuretics"),
        (5, "what the week-2 safety phone call covers"),
        (6, "home blood-pressure readings"),
    ),
    NEU: (
        (2, "MRI scans within 30 days of steroid treatment"),
        (3, "EDSS assessments by a second rater"),
        (4, "relapse visits within 7 days of onset"),
    ),
}
NEWSLETTER_TOPICS = (
    "the five most frequent queries and how to avoid them",
    "tips for complete source documents",
    "how the central laboratory handles haemolysed samples",
    "what the last monitoring visits found",
    "a site's recruitment pathway that works",
    "dates of the next investigator calls",
)


def _study_wide(replay: _Replay, enrolling: dict[str, list[str]], n: int) -> list[Planned]:
    """Working day ``n`` of each study's study-wide reminders, notices and newsletters. The
    rotations start at a different place for each study."""
    day = replay.workday(n)
    week = (replay.today - day).days // 7
    plans: list[Planned] = []
    for index, code in enumerate((ONC, CAR, NEU)):
        turn = week + 2 * index

        def plan(category, subject, body, key, clock, audience, sender="cro_pm", code=code):
            plans.append(
                Planned(
                    study=code,
                    sender=sender,
                    category=category,
                    subject=subject,
                    body=body,
                    sent=("workday", n, clock),
                    audience=audience,
                    dedup_key=f"{key}-{code}" if key else "",
                )
            )

        # The data reminders go to the study-sites with patients, the rest to all of them.
        with_patients = {"study_sites": enrolling[code], **COORDINATORS}
        if day.weekday() in STUDY_WIDE:
            category, subject, body, key = STUDY_WIDE[day.weekday()]
            plan(category, subject, body, key, "08:15", with_patients)
        elif day.weekday() == 1:
            team = {"all_sites": True}
            subject, key = STUDY_DOCUMENTS[turn % len(STUDY_DOCUMENTS)]
            body = (
                f"{subject}. Please upload it to the eTMF for {{site_name}} by Friday; your "
                "CRA checks it at the next visit."
            )
            plan(Category.DOCUMENT_REQUEST, subject, body, key, "09:30", team)
            plan(*TEAM_NOTICES[turn % len(TEAM_NOTICES)], "11:30", team)
            topic = NEWSLETTER_TOPICS[turn % len(NEWSLETTER_TOPICS)]
            plan(
                Category.NEWSLETTER,
                f"{code} weekly update, week {day.isocalendar()[1]}: {topic}",
                f"This week: {topic}, enrolment by country and answers to your questions "
                "from the last site call.",
                "",
                "14:00",
                team,
                _lead(code),
            )
            if week % 2 == 0:
                number, topic = CLARIFICATIONS[code][week // 2 % len(CLARIFICATIONS[code])]
                plan(
                    Category.TRAINING,
                    f"Protocol clarification letter {number}: {topic}",
                    f"Protocol clarification letter {number} explains {topic}. It changes no "
                    "procedure of the protocol: please read it, sign the training log and file "
                    "both in the ISF.",
                    f"clarification-{number}",
                    "15:00",
                    team,
                )
            else:
                leaders = [
                    demo.SITES[site]["name"]
                    for site, _number, status, *_ in demo.STUDY_SITES[code]
                    if status == "enrolling"
                ]
                first, second = leaders[turn % len(leaders)], leaders[(turn + 3) % len(leaders)]
                plan(
                    Category.RECOGNITION,
                    f"Recognition: {first} and {second}, the cleanest data of the fortnight",
                    f"{first} and {second} entered every visit within 5 working days and "
                    "answered their queries within 3 days on average. Thank you, and thanks "
                    "to every site keeping the data clean ahead of the next analysis.",
                    "",
                    "16:00",
                    team,
                )
        elif day.weekday() == 3:
            plan(*NOTICES[turn % len(NOTICES)], "13:00", {"all_sites": True, **COORDINATORS})
        elif day.weekday() == 4:
            plan(
                Category.SCHEDULING,
                "Visit windows next week at {site_name}: check the IRT visit schedule",
                "The IRT lists the patients of {site_name} whose visit windows open next week. "
                "Please book the visits, order the central laboratory kits and plan the drug "
                "dispensing.",
                "visit-windows",
                "10:00",
                with_patients,
            )
    return plans


def _scripted_routine() -> list[Planned]:
    """Routine traffic the demo relies on: a visit-data reminder sent three times in one day
    to Charité (a "3×" digest line), and a busy day there on which cra_1 sent three
    reminders "now" — the third over the study's daily limit, so it folded into the digest."""
    charite_coordinators = {"study_sites": ["charite"], **COORDINATORS}
    visit_data = [
        Planned(
            study=ONC,
            sender="cra_1",
            category=Category.VISIT_REMINDER,
            subject=subject,
            body="The cycle 6 day 1 visit of patient 101-042 took place 9 days ago; its eCRF "
            "pages are needed for Thursday's source data verification.",
            sent=("workday", 2, clock),
            audience=charite_coordinators,
            dedup_key="visit-data-101-042",
        )
        for clock, subject in (
            ("08:40", "Enter visit data for patient 101-042 (cycle 6 day 1) in the EDC"),
            ("12:15", "Reminder: enter visit data for patient 101-042 (cycle 6 day 1)"),
            ("16:05", "Still open: visit data for patient 101-042 (cycle 6 day 1)"),
        )
    ]
    send_now = [
        Planned(
            study=ONC,
            sender="cra_1",
            category=category,
            subject=subject,
            body=body,
            sent=("workday", 3, clock),
            audience=charite_coordinators,
            send_now=True,
        )
        for clock, category, subject, body in (
            (
                "08:20",
                Category.SCHEDULING,
                "Monitoring visit tomorrow 09:00: please reserve a room and the ISF",
                "I will be on site from 09:00 to 16:00 for source data verification of "
                "patients 101-038 to 101-045. Please have the medical records ready.",
            ),
            (
                "11:05",
                Category.VISIT_REMINDER,
                "IMP shipment arrives tomorrow: confirm receipt in the IRT",
                "Shipment 4471 (24 kits) is due tomorrow morning. Please confirm receipt and "
                "the temperature logger reading in the IRT the same day.",
            ),
            (
                "15:40",
                Category.VISIT_REMINDER,
                "Patient 101-042: cycle 6 eCRF needed before tomorrow's visit",
                "I would like to verify the cycle 6 data of patient 101-042 tomorrow; please "
                "enter it today if you can.",
            ),
        )
    ]
    neu_send_now = Planned(
        study=NEU,
        sender="cra_1",
        category=Category.SCHEDULING,
        subject="IRT maintenance tonight 22:00–23:00 CET: randomise before 21:30",
        body="Suvoda IRT is unavailable tonight between 22:00 and 23:00 CET. Please complete "
        "any randomisation planned for this evening before 21:30.",
        sent=("workday", 4, "13:30"),
        audience={"study_sites": ["charite", "vhebron"], **COORDINATORS},
        send_now=True,
    )
    return [*visit_data, *send_now, neu_send_now]
