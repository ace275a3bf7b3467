"""Digests: routine and info deliveries folded, when their window comes, into one digest per
recipient and window; duplicates (same dedup key on one study) share a line with a count; the
digest reaches the recipient in-app at once and by email (plain text and HTML)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState, Digest
from comms.rendering import digest_lines
from comms.selectors import inbox_counts
from comms.services import (
    delivery_mark_read,
    digest_emails_deliver,
    digests_build,
    message_deliver,
)
from tests.comms.helpers import digest_item, digest_items, in_app, line_counts, next_year

NOON = next_year(1, 14, 12)  # 13:00 in Berlin and Paris
WINDOW = next_year(1, 15, 7)  # 08:00 there the next morning: every site's next window


def reminder(send, at=NOON, **fields):
    return send(at, subject="Enter visit data", dedup_key="visit-data", **fields)


def test_nothing_is_built_before_the_window(world, send):
    send(NOON)
    assert digests_build(now=WINDOW - datetime.timedelta(seconds=1)) == 0
    assert not Digest.objects.exists()


def test_one_digest_per_recipient_per_window(world, send):
    for category in ("visit_reminder", "query_reminder", "newsletter"):
        send(NOON, category=category)

    assert digests_build(now=WINDOW) == 3

    digests = Digest.objects.order_by("recipient__username")
    assert [(d.recipient.username, d.window_at, d.items_count) for d in digests] == [
        ("coord_1", WINDOW, 3),
        ("coord_2", WINDOW, 3),
        ("pi_1", WINDOW, 3),
    ]
    lines = Delivery.objects.filter(kind=DeliveryKind.MESSAGE)
    assert set(lines.values_list("state", "delivered_at")) == {(DeliveryState.DELIVERED, WINDOW)}
    assert not lines.filter(digest__isnull=True).exists(), "every line is in a digest"


def test_building_again_creates_nothing_new(world, send):
    send(NOON)
    assert digests_build(now=WINDOW) == 3
    before = set(Delivery.objects.values_list("id", "state"))

    assert digests_build(now=WINDOW) == 0
    assert digests_build(now=WINDOW + datetime.timedelta(days=3)) == 0

    assert Digest.objects.count() == 3
    assert set(Delivery.objects.values_list("id", "state")) == before


def test_duplicates_on_one_study_share_a_line_with_a_count(world, send):
    lead_b = world.sponsor_lead_b
    for _ in range(3):
        reminder(send)
    reminder(send, actor=lead_b, study=world.study_b)  # the same key on another study
    send(NOON, subject="Send the lab certificates", category="document_request")
    send(NOON, subject="Training on the new eCRF", category="training", dedup_key="ecrf")

    digests_build(now=WINDOW)

    coord = digest_item(world.site_coord_1)  # Site One works on both studies
    lines = digest_lines([coord.digest_id])[coord.digest_id]
    assert sorted((line.study_code, line.subject, line.count) for line in lines) == [
        ("A-001", "Enter visit data", 3),
        ("A-001", "Send the lab certificates", 1),
        ("A-001", "Training on the new eCRF", 1),
        ("B-001", "Enter visit data", 1),
    ]
    dedup_line = next(line for line in lines if line.count == 3)
    assert len(set(dedup_line.message_ids)) == 3
    assert (coord.digest.items_count, coord.digest.lines_count) == (6, 4)
    pi = digest_item(world.pi_1)  # study A only
    assert (pi.digest.items_count, pi.digest.lines_count) == (5, 3)


def test_the_same_key_in_two_windows_is_two_lines_in_two_digests(world, send):
    reminder(send)
    reminder(send)
    reminder(send, at=WINDOW + datetime.timedelta(hours=1))

    digests_build(now=WINDOW + datetime.timedelta(days=1))

    assert [line_counts(item) for item in digest_items(world.site_coord_1)] == [
        [("Enter visit data", 2)],
        [("Enter visit data", 1)],
    ]


def test_a_recipient_gets_a_digest_for_each_window(world, send, site_prefs):
    # A site person works at one site; two windows in a day come from a schedule change.
    reminder(send, audience={"study_sites": [world.ss_a1.id]})
    site_prefs(world.site_1, digest_hour=17)
    later = reminder(send, at=NOON + datetime.timedelta(hours=1), study=world.study_a)
    evening_window = next_year(1, 14, 16)  # 17:00 in Berlin, the same day

    assert in_app(world.site_coord_1, later).due_at == evening_window
    assert digests_build(now=evening_window) == 2, "Site One's coordinator and investigator"
    assert digests_build(now=WINDOW) == 3, "the morning window, and Site Two's"

    windows = [item.digest.window_at for item in digest_items(world.site_coord_1)]
    assert windows == [evening_window, WINDOW]
    assert [line_counts(item) for item in digest_items(world.site_coord_1)] == [
        [("Enter visit data", 1)],
        [("Enter visit data", 1)],
    ]


def test_a_late_build_catches_up_every_missed_window_separately(world, send):
    reminder(send)  # tomorrow's window
    reminder(send, at=WINDOW + datetime.timedelta(hours=2))  # the day after's
    two_days_late = WINDOW + datetime.timedelta(days=2)

    assert digests_build(now=two_days_late) == 6

    windows = [item.digest.window_at for item in digest_items(world.site_coord_2)]
    assert windows == [WINDOW, WINDOW + datetime.timedelta(days=1)]


def test_small_batches_build_the_same_digests(world, send):
    for _ in range(3):
        reminder(send)
    send(NOON, category="newsletter")

    assert digests_build(now=WINDOW, batch=2) == 3

    counts = {d.recipient.username: (d.items_count, d.lines_count) for d in Digest.objects.all()}
    assert counts == {"coord_1": (4, 2), "pi_1": (4, 2), "coord_2": (4, 2)}
    assert not Delivery.objects.filter(state=DeliveryState.PENDING, via_digest=True).exists()


def test_a_throttled_message_is_a_digest_line_marked_throttled(world, send):
    for _ in range(3):
        send(NOON, send_now=True, subject="Upload the log")

    digests_build(now=WINDOW)

    item = digest_item(world.site_coord_1)
    [line] = digest_lines([item.digest_id])[item.digest_id]
    assert (line.subject, line.count, line.throttled) == ("Upload the log", 1, True)


def test_placeholders_in_a_line_name_the_recipients_site(world, send):
    send(NOON, subject="Enter visit data at {site_name}")
    digests_build(now=WINDOW)
    assert line_counts(digest_item(world.site_coord_1)) == [("Enter visit data at Site One", 1)]
    assert line_counts(digest_item(world.site_coord_2)) == [("Enter visit data at Site Two", 1)]


# --- reaching the recipient ---------------------------------------------------------------


def test_digest_is_in_the_inbox_at_once_and_its_email_waits_for_the_task(world, send, mailoutbox):
    reminder(send)
    digests_build(now=WINDOW)

    rows = Delivery.objects.filter(kind=DeliveryKind.DIGEST, recipient=world.site_coord_1)
    in_app_row, email_row = rows.get(channel=Channel.IN_APP), rows.get(channel=Channel.EMAIL)
    assert (in_app_row.state, in_app_row.delivered_at) == (DeliveryState.DELIVERED, WINDOW)
    assert (email_row.state, email_row.due_at) == (DeliveryState.PENDING, WINDOW)
    assert in_app_row.digest_id == email_row.digest_id
    assert in_app_row.message_id is None
    assert mailoutbox == []
    assert inbox_counts(world.site_coord_1) == {"unread": 1, "to_acknowledge": 0}


def test_digest_email_has_plain_text_and_html_parts(world, send, mailoutbox):
    for _ in range(3):
        reminder(send)
    send(NOON, subject="Send the lab certificates", category="document_request")
    digests_build(now=WINDOW)
    digest_ids = list(Digest.objects.values_list("id", flat=True))

    assert digest_emails_deliver(digest_ids=digest_ids, now=WINDOW) == 3
    assert digest_emails_deliver(digest_ids=digest_ids, now=WINDOW) == 0, "sent once"

    assert len(mailoutbox) == 3
    email = next(email for email in mailoutbox if email.to == ["coord_1@example.org"])
    assert email.subject == "TrialHub digest: 2 updates"
    assert "[A-001] 3× Enter visit data" in email.body
    assert "[A-001] Send the lab certificates" in email.body
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    assert "<strong>A-001</strong> · 3× Enter visit data" in html
    assert "/inbox/" in html
    emails = Delivery.objects.filter(kind=DeliveryKind.DIGEST, channel=Channel.EMAIL)
    assert set(emails.values_list("state", "delivered_at")) == {(DeliveryState.DELIVERED, WINDOW)}


def test_digest_email_escapes_subjects_in_html_only(world, send, mailoutbox):
    send(NOON, subject="Bring <ID> & consent forms")
    digests_build(now=WINDOW)
    digest_emails_deliver(digest_ids=[digest_item(world.site_coord_1).digest_id], now=WINDOW)

    [email] = mailoutbox
    assert "Bring <ID> & consent forms" in email.body
    [(html, _mimetype)] = email.alternatives
    assert "Bring &lt;ID&gt; &amp; consent forms" in html
    assert "<ID>" not in html


def test_a_recipient_without_an_address_gets_the_digest_in_app_only(world, send, mailoutbox):
    type(world.pi_1).objects.filter(pk=world.pi_1.pk).update(email="")
    reminder(send)
    digests_build(now=WINDOW)

    pi_rows = Delivery.objects.filter(kind=DeliveryKind.DIGEST, recipient=world.pi_1)
    assert list(pi_rows.values_list("channel", flat=True)) == [Channel.IN_APP]
    digest_emails_deliver(digest_ids=Digest.objects.values_list("id", flat=True), now=WINDOW)
    assert sorted(address for email in mailoutbox for address in email.to) == [
        "coord_1@example.org",
        "coord_2@example.org",
    ]


def test_message_delivery_never_sends_a_digest_line_alone(world, send, mailoutbox):
    message = reminder(send)
    assert message_deliver(message_id=message.id, now=WINDOW) == 0
    digests_build(now=WINDOW)
    assert message_deliver(message_id=message.id, now=WINDOW) == 0
    assert mailoutbox == []


# --- reading --------------------------------------------------------------------------------


def test_reading_a_digest_reads_its_lines(world, send):
    first, second = reminder(send), send(NOON, category="newsletter")
    digests_build(now=WINDOW)
    coord, pi = world.site_coord_1, world.pi_1
    later = WINDOW + datetime.timedelta(hours=2)

    item = delivery_mark_read(delivery=digest_item(coord), actor=coord, now=later)

    assert (item.state, item.read_at) == (DeliveryState.READ, later)
    for message in (first, second):
        line = in_app(coord, message)
        assert (line.state, line.read_at) == (DeliveryState.READ, later)
        other = in_app(pi, message)
        assert (other.state, other.read_at) == (DeliveryState.DELIVERED, None), "not pi's"
    assert digest_item(pi).state == DeliveryState.DELIVERED
    assert inbox_counts(coord)["unread"] == 0


def test_reading_a_digest_leaves_other_digests_unread(world, send):
    earlier, later_message = reminder(send), reminder(send, at=WINDOW + datetime.timedelta(hours=1))
    digests_build(now=WINDOW + datetime.timedelta(days=1))
    coord = world.site_coord_1
    first, second = digest_items(coord)

    delivery_mark_read(delivery=first, actor=coord, now=WINDOW + datetime.timedelta(days=1))

    assert in_app(coord, earlier).state == DeliveryState.READ
    assert in_app(coord, later_message).state == DeliveryState.DELIVERED
    second.refresh_from_db()
    assert second.state == DeliveryState.DELIVERED


@pytest.mark.parametrize("person", ["pi_1", "site_coord_2", "sponsor_lead_a"])
def test_only_the_recipient_reads_a_digest(world, send, person):
    reminder(send)
    digests_build(now=WINDOW)
    item = digest_item(world.site_coord_1)
    with pytest.raises(PermissionDenied):
        delivery_mark_read(delivery=item, actor=getattr(world, person), now=WINDOW)
    item.refresh_from_db()
    assert item.state == DeliveryState.DELIVERED
