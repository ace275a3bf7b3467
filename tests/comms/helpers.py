"""Small readers shared by the communications tests (plain functions, no fixtures)."""

from __future__ import annotations

import datetime
import json

import redis
from django.conf import settings
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind
from comms.rendering import digest_lines

# Every site of ``world`` has the default schedule (a daily digest at 8:00 local time), so a
# delivery that waits for the digest is due within 25 hours of being sent (a day, and an
# hour more across an autumn clock change).
DIGEST_WAIT = datetime.timedelta(hours=25)


def in_app(user, message) -> Delivery:
    """``user``'s in-app delivery of ``message`` (a stand-alone item or a digest line)."""
    return Delivery.objects.get(
        kind=DeliveryKind.MESSAGE, recipient=user, message=message, channel=Channel.IN_APP
    )


def digest_items(user):
    """``user``'s in-app digest deliveries, oldest window first."""
    return Delivery.objects.filter(
        kind=DeliveryKind.DIGEST, recipient=user, channel=Channel.IN_APP
    ).order_by("digest__window_at", "id")


def digest_item(user) -> Delivery:
    """``user``'s only in-app digest delivery."""
    return digest_items(user).get()


def line_counts(delivery: Delivery) -> list[tuple[str, int]]:
    """A digest delivery's lines as (subject, count), in the order they are shown."""
    return [
        (line.subject, line.count)
        for line in digest_lines([delivery.digest_id])[delivery.digest_id]
    ]


def label(item: Delivery) -> str:
    """How an inbox row reads in assertions: a message's subject, a digest's line subjects,
    an escalation's subject with the site."""
    if item.kind == DeliveryKind.DIGEST:
        return "digest: " + ", ".join(subject for subject, _count in line_counts(item))
    if item.kind == DeliveryKind.ESCALATION:
        return f"escalation: {item.message.subject} at {item.study_site.site.name}"
    return item.message.subject


def next_year(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime.datetime:
    """A UTC instant in the coming year: role assignments of ``world`` start today and have
    no end, so anything sent then reaches them, and the calendar date (weekday, clock
    changes but not the weekday) is fixed by the arguments rather than by the day the tests
    run."""
    year = timezone.localdate().year + 1
    return datetime.datetime(year, month, day, hour, minute, tzinfo=datetime.UTC)


class Published:
    """Tasks published to the test broker's queues since this object was made, read from
    Redis (kombu pushes each new message at the head of the queue's list)."""

    QUEUES = ("priority", "routine")

    def __init__(self) -> None:
        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.start = {queue: self.redis.llen(queue) for queue in self.QUEUES}

    def __call__(self, queue: str) -> list[tuple[str, str]]:
        """(task name, its arguments as Celery shows them), oldest first."""
        new = self.redis.llen(queue) - self.start[queue]
        raw = self.redis.lrange(queue, 0, new - 1) if new > 0 else []
        headers = [json.loads(item)["headers"] for item in reversed(raw)]
        return [(header["task"], header["argsrepr"]) for header in headers]
