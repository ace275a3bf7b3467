"""Fault tests: killed workers, a broker outage and a beat outage, with real processes.

Each test runs its own ``celery worker`` processes (``tests.comms.workers``) on a private
``redis-server`` of this module, against the test database (the tests commit:
``transaction=True``), and stops them by pid. PRODUCT.md "Delivery": the database is the source
of truth and the sweeper re-enqueues whatever is stuck, so these faults lose nothing and deliver
nothing twice (in-app exactly once; an email at most once more for the chunk in flight when a
worker dies, ``comms.services.delivery``). Time is passed to the sweep as ``now``, not slept.
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from smtplib import SMTPServerDisconnected
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from comms.models import (
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Digest,
    Message,
    MessageStatus,
)
from comms.services import message_deliver, message_send
from comms.services.delivery import EMAIL_CHUNK
from comms.services.sweeps import stuck_after
from comms.tasks import sweep
from sites.models import Site
from tests.comms.workers import (
    DELIVERY_TIMEOUT,
    PrivateRedis,
    SentEmail,
    Worker,
    drop_broker_connections,
    private_redis_server,
    publishing_to,
    sent_emails,
    start_worker,
    wait_for,
    wait_for_other_sessions_to_end,
)
from tests.email_backends import FlakyMailServer
from trialhub.models import RoleAssignment, StudyRole

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

User = get_user_model()
FAN_OUT = 5000
FAN_OUT_TIMEOUT = 120  # seconds, only reached when something is wrong


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[PrivateRedis]:
    with (
        private_redis_server(tmp_path_factory.mktemp("redis")) as server,
        publishing_to(server),
    ):
        yield server


@pytest.fixture
def mail_dir(tmp_path) -> Path:
    directory = tmp_path / "mail"
    directory.mkdir()
    return directory


@pytest.fixture
def workers(broker, django_db_setup, tmp_path, mail_dir) -> Iterator[Callable[[], Worker]]:
    """``workers()`` starts one more worker on the module's Redis, emailing into ``mail_dir``;
    every worker started is stopped (by pid) when the test ends."""
    started: list[Worker] = []

    def start() -> Worker:
        worker = start_worker(broker, tmp_path, mail_dir, pool="prefork")
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        # SIGKILL, by pid: the test is over, and a warm shutdown costs seconds per worker.
        for worker in started:
            worker.kill()


def sweep_through_broker(now: datetime.datetime) -> str:
    """What beat does, once, with a chosen clock: a sweep task for the worker."""
    return sweep.apply_async(kwargs={"now": now.isoformat()}, queue="default").id


def add_coordinators(world, count: int) -> list[str]:
    """``count`` site coordinators of study A, split over its two study-sites, in two bulk
    inserts; return their email addresses. Audience resolution reads role assignments only,
    so the object permissions that ``role_assignment_create`` grants are left out."""
    users = User.objects.bulk_create(
        User(username=f"fanout_{n:05}", email=f"fanout_{n:05}@example.org", password="!")
        for n in range(count)
    )
    study_sites = (world.ss_a1, world.ss_a2)
    RoleAssignment.objects.bulk_create(
        RoleAssignment(
            user=user,
            role=StudyRole.SITE_COORDINATOR,
            study=world.study_a,
            study_site=study_sites[n % 2],
            start_date=timezone.localdate() - datetime.timedelta(days=30),
            created_by=world.cro_pm,
        )
        for n, user in enumerate(users)
    )
    return [user.email for user in users]


def test_a_worker_killed_mid_fan_out_is_finished_by_the_sweeper_exactly_once(
    world, draft, workers, broker, mail_dir
):
    """SIGKILL the worker while it emails a 5,000-recipient key message, restart one, sweep.

    The killed worker's task stays unacknowledged in Redis: the broker's visibility timeout
    (3600 s) is longer than any delay, so Redis would hand it out again only an hour later.
    The sweeper finishes the job: it finds the deliveries still pending past
    ``COMMS_STUCK_AFTER_SECONDS`` and enqueues the message again for the restarted worker.
    """
    addresses = add_coordinators(world, FAN_OUT)
    addresses += [world.site_coord_1.email, world.site_coord_2.email, world.pi_1.email]
    subject = "Amendment 7 to 5,000 sites"
    first = workers()
    message = message_send(
        message=draft(category="protocol_amendment", subject=subject),
        actor=world.sponsor_lead_a,
    )
    rows = Delivery.objects.filter(message=message)
    emails = rows.filter(channel=Channel.EMAIL)
    assert rows.count() == 2 * len(addresses), "in-app and email for each recipient"
    wait_for(
        lambda: emails.filter(state=DeliveryState.DELIVERED).count() >= EMAIL_CHUNK,
        FAN_OUT_TIMEOUT,
        "the first chunk of emails delivered",
        interval=0.02,
    )
    first.kill()
    wait_for_other_sessions_to_end()

    delivered_at_kill = dict(
        rows.exclude(state=DeliveryState.PENDING).values_list("pk", "delivered_at")
    )
    pending_at_kill = set(
        emails.filter(state=DeliveryState.PENDING).values_list("recipient__email", flat=True)
    )
    emailed_at_kill = sum(1 for sent in sent_emails(mail_dir) if sent.subject.endswith(subject))
    emails_delivered_at_kill = len(addresses) - len(pending_at_kill)
    in_flight = emailed_at_kill - emails_delivered_at_kill
    assert pending_at_kill, "the worker was killed before it had emailed everyone"
    assert 0 <= in_flight <= EMAIL_CHUNK, "only the chunk in flight was sent but not recorded"
    assert broker.unacked() == 1, "the killed worker's task is taken and never acknowledged"

    second = workers()
    sweep_id = sweep_through_broker(timezone.now() + stuck_after() + datetime.timedelta(seconds=1))
    wait_for(
        lambda: not rows.filter(state=DeliveryState.PENDING).exists(),
        FAN_OUT_TIMEOUT,
        "every delivery delivered after the sweep",
    )
    wait_for(lambda: broker.pending() == 1, 10, "the restarted worker's tasks acknowledged")

    assert "'messages_requeued': 1" in wait_for(
        lambda: second.succeeded(sweep_id, task="sweep"), 10, "the sweep"
    )
    assert broker.unacked() == 1, "the killed task was not redelivered: the sweeper did the job"
    # Exactly once per (message, recipient, channel), each row delivered by one run only.
    assert rows.count() == 2 * len(addresses)
    assert rows.values("recipient", "channel").distinct().count() == rows.count()
    assert set(rows.values_list("state", flat=True)) == {DeliveryState.DELIVERED}
    after = dict(rows.values_list("pk", "delivered_at"))
    assert {pk: after[pk] for pk in delivered_at_kill} == delivered_at_kill, "not delivered again"
    first_run = set(delivered_at_kill.values())
    second_run = {after[pk] for pk in after.keys() - delivered_at_kill.keys()}
    assert len(first_run) == 1 and len(second_run) == 1 and second_run != first_run
    # Every recipient emailed; only the in-flight chunk twice.
    sent = Counter(sent.to for sent in sent_emails(mail_dir) if sent.subject.endswith(subject))
    assert set(sent) == set(addresses), "everyone emailed at least once"
    twice = {address for address, count in sent.items() if count > 1}
    assert sum(sent.values()) - len(sent) == in_flight == len(twice) <= EMAIL_CHUNK
    assert twice <= pending_at_kill, "only emails whose delivery was rolled back went again"
    assert max(sent.values()) <= 2


def test_a_message_sent_while_the_broker_is_down_is_committed_and_swept_out_later(
    world, draft, workers, broker, caplog
):
    """Redis is down at send: the message and its deliveries commit, the failed enqueue
    after commit is logged (not raised at the sender), and once Redis is back the sweeper
    finds the deliveries pending past the stuck threshold and has a worker deliver them."""
    subject = "Amendment 9 while Redis is down"
    broker.stop()
    try:
        with caplog.at_level(logging.ERROR, logger="comms.services.sending"):
            sent = message_send(
                message=draft(category="protocol_amendment", subject=subject),
                actor=world.sponsor_lead_a,
            )
    finally:
        broker.start()  # the same port, empty: nothing of the failed publish survived
        drop_broker_connections()

    message = Message.objects.get(pk=sent.pk)
    rows = Delivery.objects.filter(message=message)
    assert message.status == MessageStatus.SENT
    assert rows.count() == 6, "three people on two sites, in-app and by email"
    assert set(rows.values_list("state", flat=True)) == {DeliveryState.PENDING}
    [record] = [record for record in caplog.records if record.name == "comms.services.sending"]
    assert record.levelno == logging.ERROR and record.args == (message.id,)
    assert "left pending" in record.getMessage() and record.exc_info is not None
    assert broker.pending() == 0, "nothing reached the restarted broker"

    worker = workers()
    sweep_id = sweep_through_broker(timezone.now() + stuck_after() + datetime.timedelta(seconds=1))
    wait_for(
        lambda: not rows.filter(state=DeliveryState.PENDING).exists(),
        DELIVERY_TIMEOUT,
        "the swept message delivered",
    )
    wait_for(lambda: broker.pending() == 0, DELIVERY_TIMEOUT, "the worker's tasks acknowledged")

    assert "'messages_requeued': 1" in wait_for(
        lambda: worker.succeeded(sweep_id, task="sweep"), DELIVERY_TIMEOUT, "the sweep"
    )
    assert set(rows.values_list("state", flat=True)) == {DeliveryState.DELIVERED}
    assert worker.emails(subject) == sorted(
        [world.site_coord_1.email, world.site_coord_2.email, world.pi_1.email]
    ), "one email each"


def test_digests_and_escalations_catch_up_after_an_hour_without_beat(
    world, draft, workers, broker, mail_dir
):
    """Beat is down from ``start`` for an hour: two digest windows (at +10 and +40 minutes)
    and an acknowledgement due time (+20 minutes) pass without a sweep. One sweep at +60
    minutes, run by the worker, builds every missed digest in its own window and escalates
    the overdue acknowledgements; the worker emails the digests and delivers the escalations.

    ``start`` lies in the past so that the sweep's ``now`` (+60) is no later than the clock
    of the worker, which delivers what is due by its own time."""
    first_window = (timezone.now() - datetime.timedelta(minutes=50)).replace(
        minute=0, second=0, microsecond=0
    )
    start = first_window - datetime.timedelta(minutes=10)
    second_window = first_window + datetime.timedelta(minutes=30)
    ack_due_at = start + datetime.timedelta(minutes=20)
    swept_at = start + datetime.timedelta(hours=1)
    # Site one digests at the hour in UTC; site two in India (UTC+5:30), half an hour later.
    Site.objects.filter(pk=world.site_1.pk).update(time_zone="UTC", digest_hour=first_window.hour)
    india = second_window.astimezone(ZoneInfo("Asia/Kolkata"))
    assert india.minute == 0
    Site.objects.filter(pk=world.site_2.pk).update(time_zone="Asia/Kolkata", digest_hour=india.hour)
    # Everyone holds their roles at ``start`` too (the world's assignments begin today).
    RoleAssignment.objects.update(start_date=start.date() - datetime.timedelta(days=30))
    both = User.objects.create(username="coord_both", email="coord_both@example.org")
    for study_site in (world.ss_a1, world.ss_a2):
        RoleAssignment.objects.create(
            user=both,
            role=StudyRole.SITE_COORDINATOR,
            study=world.study_a,
            study_site=study_site,
            start_date=start.date(),
        )
    lead, coord_1, coord_2, pi_1 = (
        world.sponsor_lead_a,
        world.site_coord_1,
        world.site_coord_2,
        world.pi_1,
    )
    worker = workers()

    def send(**fields) -> Message:
        return message_send(message=draft(**fields), actor=lead, now=start)

    site_one = send(subject="Visit data, site one", audience={"study_sites": [world.ss_a1.id]})
    site_two = send(subject="Visit data, site two", audience={"study_sites": [world.ss_a2.id]})
    key = send(category="protocol_amendment", subject="Amendment 10", ack_due_at=ack_due_at)
    key_rows = Delivery.objects.filter(message=key, kind=DeliveryKind.MESSAGE)
    wait_for(
        lambda: not key_rows.filter(state=DeliveryState.PENDING).exists(),
        DELIVERY_TIMEOUT,
        "the key message delivered at once",
    )
    # Beat is down: nothing built, nothing escalated, the routine items wait in their windows.
    assert not Digest.objects.exists()
    assert not Delivery.objects.filter(kind=DeliveryKind.ESCALATION).exists()
    routine = Delivery.objects.filter(message__in=[site_one, site_two])
    assert set(routine.values_list("recipient", "due_at", "state")) == {
        (coord_1.id, first_window, DeliveryState.PENDING),
        (pi_1.id, first_window, DeliveryState.PENDING),
        (both.id, first_window, DeliveryState.PENDING),
        (both.id, second_window, DeliveryState.PENDING),
        (coord_2.id, second_window, DeliveryState.PENDING),
    }

    sweep_id = sweep_through_broker(swept_at)
    result = wait_for(
        lambda: worker.succeeded(sweep_id, task="sweep"), DELIVERY_TIMEOUT, "the late sweep"
    )
    wait_for(
        lambda: not Delivery.objects.filter(state=DeliveryState.PENDING).exists(),
        DELIVERY_TIMEOUT,
        "digest emails and escalations delivered by the worker",
    )
    wait_for(lambda: broker.pending() == 0, DELIVERY_TIMEOUT, "the worker's tasks acknowledged")

    assert result == (
        "{'digests': 5, 'escalations': 2, 'messages_requeued': 0, 'digests_requeued': 0}"
    )
    # One digest per recipient and window, each window its own, built by the late sweep.
    digests = Digest.objects.all()
    assert set(digests.values_list("recipient", "window_at", "items_count", "created_at")) == {
        (coord_1.id, first_window, 1, swept_at),
        (pi_1.id, first_window, 1, swept_at),
        (both.id, first_window, 1, swept_at),
        (both.id, second_window, 1, swept_at),
        (coord_2.id, second_window, 1, swept_at),
    }
    assert set(routine.values_list("state", "delivered_at")) == {
        (DeliveryState.DELIVERED, swept_at)
    }
    assert not routine.filter(digest__isnull=True).exists()
    digest_rows = Delivery.objects.filter(kind=DeliveryKind.DIGEST)
    assert sorted(digest_rows.values_list("digest", "channel", "state")) == sorted(
        (digest, channel, DeliveryState.DELIVERED)
        for digest in digests.values_list("id", flat=True)
        for channel in (Channel.IN_APP, Channel.EMAIL)
    )
    # Every unacknowledged key delivery escalated once, at the sweep, per study-site: to its
    # PI and CRA (site one has both, site two neither) and to the sender.
    assert set(key_rows.filter(channel=Channel.IN_APP).values_list("escalated_at", flat=True)) == {
        swept_at
    }
    escalations = Delivery.objects.filter(kind=DeliveryKind.ESCALATION, message=key)
    assert sorted(escalations.values_list("study_site", "recipient", "channel", "state")) == sorted(
        (study_site.id, person.id, channel, DeliveryState.DELIVERED)
        for study_site, person in (
            (world.ss_a1, pi_1),
            (world.ss_a1, world.cra),
            (world.ss_a1, lead),
            (world.ss_a2, lead),
        )
        for channel in (Channel.IN_APP, Channel.EMAIL)
    )
    # And the worker sent the emails: the digests, the key message, the escalations.
    sent = Counter(sent_emails(mail_dir))
    digest_email = "TrialHub digest: 1 update"
    not_acknowledged = "[A-001] Not acknowledged at {}: Amendment 10"
    assert sent == {
        SentEmail(coord_1.email, digest_email): 1,
        SentEmail(pi_1.email, digest_email): 1,
        SentEmail(both.email, digest_email): 2,
        SentEmail(coord_2.email, digest_email): 1,
        **{
            SentEmail(person.email, "[A-001] Key: Amendment 10"): 1
            for person in (coord_1, pi_1, both, coord_2)
        },
        SentEmail(pi_1.email, not_acknowledged.format("Site One")): 1,
        SentEmail(world.cra.email, not_acknowledged.format("Site One")): 1,
        SentEmail(lead.email, not_acknowledged.format("Site One")): 1,
        SentEmail(lead.email, not_acknowledged.format("Site Two")): 1,
    }


@pytest.fixture
def flaky_mail_server(settings) -> Iterator[type[FlakyMailServer]]:
    settings.EMAIL_BACKEND = "tests.email_backends.FlakyMailServer"
    FlakyMailServer.capacity, FlakyMailServer.accepted = None, []
    try:
        yield FlakyMailServer
    finally:
        FlakyMailServer.capacity, FlakyMailServer.accepted = None, []


@pytest.mark.django_db
def test_a_mail_server_failing_mid_chunk_keeps_what_it_took_and_the_retry_sends_the_rest(
    world, draft, flaky_mail_server, django_capture_on_commit_callbacks
):
    """The mail server takes two emails of a chunk, then drops the connection: those two are
    delivered (committed before the error reaches Celery, which retries on ``OSError``), the
    third stays pending, and the retry sends only that one."""
    with django_capture_on_commit_callbacks():  # the enqueue is not under test here
        message = message_send(
            message=draft(category="protocol_amendment"), actor=world.sponsor_lead_a
        )
    emails = Delivery.objects.filter(message=message, channel=Channel.EMAIL)
    addresses = sorted(emails.values_list("recipient__email", flat=True))
    assert len(addresses) == 3 < EMAIL_CHUNK, "one chunk"
    flaky_mail_server.capacity = 2

    with pytest.raises(SMTPServerDisconnected):
        message_deliver(message_id=message.id)  # what the deliver_message task runs

    taken = sorted(email.to[0] for email in flaky_mail_server.accepted)
    delivered = emails.filter(state=DeliveryState.DELIVERED)
    assert len(taken) == 2
    assert sorted(delivered.values_list("recipient__email", flat=True)) == taken
    assert emails.filter(state=DeliveryState.PENDING).count() == 1

    flaky_mail_server.capacity = None
    assert message_deliver(message_id=message.id) == 1, "the retry sends the one left"
    assert sorted(email.to[0] for email in flaky_mail_server.accepted) == addresses
    assert set(emails.values_list("state", flat=True)) == {DeliveryState.DELIVERED}
