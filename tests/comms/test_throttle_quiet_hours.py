"""When each recipient's delivery is due (PRODUCT.md "Delivery"): critical at once, key after
the site's quiet hours, routine and info at the site's next digest window; "send now" routine
messages alone up to the study's daily limit per site, the rest folded into the digest.
Nothing is ever dropped: every recipient has a row. The clock is passed in (``at``)."""

from __future__ import annotations

import datetime

import pytest

from comms.models import (
    DEFAULT_SEND_NOW_DAILY_LIMIT,
    Channel,
    Delivery,
    DeliveryState,
    StudyCommsPolicy,
)
from comms.rendering import digest_lines
from comms.services import digests_build, message_approve, message_deliver, message_send
from tests.comms.helpers import digest_item, next_year

MINUTE = datetime.timedelta(minutes=1)
STUDY_A_PEOPLE = {"coord_1", "pi_1", "coord_2"}


def rows(message) -> dict[tuple[str, str], Delivery]:
    """The message's deliveries by (recipient username, channel)."""
    return {
        (row.recipient.username, row.channel): row
        for row in Delivery.objects.filter(message=message).select_related("recipient")
    }


def in_app_people(message) -> set[str]:
    return {username for username, channel in rows(message) if channel == Channel.IN_APP}


def alone(message, username: str) -> bool:
    """The recipient gets the message stand-alone: in-app and by email, not via the digest."""
    found = rows(message)
    in_app, email = found[username, Channel.IN_APP], found.get((username, Channel.EMAIL))
    assert not in_app.throttled or in_app.via_digest
    if in_app.via_digest:
        assert email is None, "digest-bound messages are emailed with the digest"
        return False
    assert email is not None and email.due_at == in_app.due_at
    return True


@pytest.fixture
def evening():
    """22:30 in Berlin and Paris (21:30 UTC) on 14 January next year (winter time)."""
    return next_year(1, 14, 21, 30)


@pytest.fixture
def quiet_site_1(world, site_prefs):
    """Site One (Berlin) keeps quiet hours 20:00-07:00; Site Two (Paris) has none and takes
    its digest at 17:00."""
    site_prefs(
        world.site_1,
        quiet_hours_enabled=True,
        quiet_hours_start=datetime.time(20),
        quiet_hours_end=datetime.time(7),
    )
    site_prefs(world.site_2, digest_hour=17)


# --- due time by tier -----------------------------------------------------------------------


def test_critical_is_due_at_once_even_in_quiet_hours(world, send, evening, quiet_site_1):
    message = send(evening, category="safety")

    assert in_app_people(message) == STUDY_A_PEOPLE
    assert {row.due_at for row in rows(message).values()} == {evening}
    assert all(alone(message, person) for person in STUDY_A_PEOPLE)
    assert message_deliver(message_id=message.id, now=evening) == 6, "3 in-app and 3 emails"


def test_key_waits_for_the_end_of_the_sites_quiet_hours(world, send, evening, quiet_site_1):
    message = send(evening, category="protocol_amendment")
    quiet_end = next_year(1, 15, 6)  # 07:00 in Berlin

    due = {key: row.due_at for key, row in rows(message).items()}
    assert due == {
        ("coord_1", Channel.IN_APP): quiet_end,
        ("coord_1", Channel.EMAIL): quiet_end,
        ("pi_1", Channel.IN_APP): quiet_end,
        ("pi_1", Channel.EMAIL): quiet_end,
        # Site Two has no quiet hours.
        ("coord_2", Channel.IN_APP): evening,
        ("coord_2", Channel.EMAIL): evening,
    }
    assert message.ack_due_at == evening + datetime.timedelta(hours=48)
    assert message_deliver(message_id=message.id, now=evening) == 2, "Site Two only"
    assert message_deliver(message_id=message.id, now=quiet_end - MINUTE) == 0
    assert message_deliver(message_id=message.id, now=quiet_end) == 4
    assert set(Delivery.objects.filter(message=message).values_list("state", flat=True)) == {
        DeliveryState.DELIVERED
    }


def test_a_send_now_routine_message_also_waits_for_the_end_of_quiet_hours(
    world, send, evening, quiet_site_1
):
    message = send(evening, send_now=True, subject="Upload the signed log")
    quiet_end = next_year(1, 15, 6)  # 07:00 in Berlin

    due = {key: row.due_at for key, row in rows(message).items()}
    assert due[("coord_1", Channel.IN_APP)] == quiet_end
    assert due[("coord_1", Channel.EMAIL)] == quiet_end
    assert due[("coord_2", Channel.IN_APP)] == evening, "Site Two has no quiet hours"
    assert not any(row.via_digest for row in rows(message).values()), "still stand-alone"


def test_key_outside_quiet_hours_is_due_at_once(world, send, quiet_site_1):
    noon = next_year(1, 14, 11)
    message = send(noon, category="recruitment_push")
    assert {row.due_at for row in rows(message).values()} == {noon}


@pytest.mark.parametrize("category", ["visit_reminder", "newsletter"])
def test_routine_and_info_wait_for_the_next_window_of_the_recipients_site(
    world, send, evening, quiet_site_1, category
):
    message = send(evening, category=category)

    found = rows(message)
    assert set(found) == {(person, Channel.IN_APP) for person in STUDY_A_PEOPLE}
    assert all(row.via_digest and not row.throttled for row in found.values())
    assert {person: row.due_at for (person, _channel), row in found.items()} == {
        "coord_1": next_year(1, 15, 7),  # 08:00 in Berlin
        "pi_1": next_year(1, 15, 7),
        "coord_2": next_year(1, 15, 16),  # 17:00 in Paris
    }
    assert message_deliver(message_id=message.id, now=next_year(1, 16)) == 0, "never alone"


def test_a_weekly_site_waits_for_its_weekday(world, send, site_prefs):
    at = next_year(1, 14, 12)
    weekday = (at.weekday() + 3) % 7  # three days ahead, whatever the year
    site_prefs(world.site_2, digest_frequency="weekly", digest_weekday=weekday, digest_hour=9)

    message = send(at)

    window = rows(message)["coord_2", Channel.IN_APP].due_at
    assert window == next_year(1, 17, 8), "09:00 in Paris, three days later"
    assert rows(message)["coord_1", Channel.IN_APP].due_at == next_year(1, 15, 7)


def test_routine_window_at_the_local_hour_across_the_spring_clock_change(world, send):
    # The last Sunday of March next year: clocks go forward in Europe that night.
    last_day = next_year(3, 31)
    sunday = last_day - datetime.timedelta(days=(last_day.weekday() + 1) % 7)
    saturday_noon = sunday - datetime.timedelta(hours=12)

    message = send(saturday_noon)

    due = rows(message)["coord_1", Channel.IN_APP].due_at
    assert due == sunday + datetime.timedelta(hours=6), "08:00 summer time in Berlin"


# --- send now and its throttle --------------------------------------------------------------


def test_send_now_goes_alone_within_the_daily_limit_then_folds_into_the_digest(
    world, send, evening
):
    assert DEFAULT_SEND_NOW_DAILY_LIMIT == 2
    first, second, third = (
        send(evening + n * MINUTE, send_now=True, subject=f"Upload log {n}") for n in range(3)
    )

    for message in (first, second):
        assert all(alone(message, person) for person in STUDY_A_PEOPLE)
        assert {row.due_at for row in rows(message).values()} == {message.sent_at}
    assert in_app_people(third) == STUDY_A_PEOPLE, "nothing is dropped"
    assert not any(alone(third, person) for person in STUDY_A_PEOPLE)
    assert all(row.throttled and row.via_digest for row in rows(third).values())
    assert rows(third)["coord_1", Channel.IN_APP].due_at == next_year(1, 15, 7)
    assert message_deliver(message_id=third.id, now=next_year(1, 16)) == 0

    digests_build(now=next_year(1, 15, 8))
    lines = digest_lines([digest_item(world.site_coord_1).digest_id])
    [line] = next(iter(lines.values()))
    assert (line.subject, line.count, line.throttled) == ("Upload log 2", 1, True)


def test_the_limit_counts_per_site(world, send, evening):
    to_site_1 = {"audience": {"study_sites": [world.ss_a1.id]}, "send_now": True}
    send(evening, **to_site_1)
    send(evening + MINUTE, **to_site_1)

    to_all = send(evening + 2 * MINUTE, send_now=True)

    assert not alone(to_all, "coord_1")
    assert not alone(to_all, "pi_1")
    assert alone(to_all, "coord_2"), "Site Two had none today"


def test_the_limit_counts_per_study(world, send, evening):
    send(evening, send_now=True)
    send(evening + MINUTE, send_now=True)

    study_b = send(
        evening + 2 * MINUTE,
        actor=world.sponsor_lead_b,
        study=world.study_b,
        send_now=True,
    )

    assert alone(study_b, "coord_1"), "Site One's two were on study A"
    assert alone(study_b, "coord_3")


def test_the_limit_counts_per_local_day_of_the_site(world, send, site_prefs):
    site_prefs(world.site_2, time_zone="America/New_York")
    late = next_year(1, 14, 22, 30)  # 23:30 in Berlin, 17:30 in New York
    send(late, send_now=True)
    send(late + MINUTE, send_now=True)

    after_midnight = send(late + datetime.timedelta(hours=1), send_now=True)

    # 00:30 in Berlin: a new day for Site One; 18:30 in New York: the same day for Site Two.
    assert alone(after_midnight, "coord_1")
    assert alone(after_midnight, "pi_1")
    assert not alone(after_midnight, "coord_2")


def test_the_limit_is_not_a_rolling_24_hours(world, send):
    # 00:10 and 00:20 in Berlin on the 14th, then 23:50 the same local day: throttled.
    morning = next_year(1, 13, 23, 10)
    send(morning, send_now=True)
    send(morning + 10 * MINUTE, send_now=True)
    same_day = send(next_year(1, 14, 22, 50), send_now=True)
    next_day = send(next_year(1, 14, 23, 10), send_now=True)

    assert not alone(same_day, "coord_1")
    assert alone(next_day, "coord_1"), "00:10 on the 15th in Berlin"


def test_the_limit_comes_from_the_studys_policy(world, send, evening):
    StudyCommsPolicy.objects.create(study=world.study_a, send_now_daily_limit=1)
    StudyCommsPolicy.objects.create(study=world.study_b, send_now_daily_limit=3)

    a1, a2 = (send(evening + n * MINUTE, send_now=True) for n in range(2))
    lead_b = world.sponsor_lead_b
    b_messages = [
        send(evening + n * MINUTE, actor=lead_b, study=world.study_b, send_now=True)
        for n in range(4)
    ]

    assert alone(a1, "coord_1")
    assert not alone(a2, "coord_1"), "study A allows one a day"
    assert [alone(message, "coord_1") for message in b_messages] == [True, True, True, False]


def test_a_limit_of_zero_folds_every_send_now_message_into_the_digest(world, send, evening):
    StudyCommsPolicy.objects.create(study=world.study_a, send_now_daily_limit=0)
    message = send(evening, send_now=True)
    assert not any(alone(message, person) for person in STUDY_A_PEOPLE)


def test_other_messages_do_not_use_up_the_limit(world, send, evening):
    for n, category in enumerate(["safety", "protocol_amendment", "visit_reminder", "training"]):
        send(evening + n * MINUTE, category=category)

    message = send(evening + 5 * MINUTE, send_now=True)

    assert all(alone(message, person) for person in STUDY_A_PEOPLE)


@pytest.mark.parametrize("category", ["safety", "protocol_amendment"])
def test_key_and_critical_are_never_throttled(world, send, evening, category):
    for n in range(DEFAULT_SEND_NOW_DAILY_LIMIT + 1):
        send(evening + n * MINUTE, send_now=True)

    messages = [send(evening + (5 + n) * MINUTE, category=category) for n in range(3)]

    for message in messages:
        assert all(alone(message, person) for person in STUDY_A_PEOPLE)
        assert not any(row.throttled for row in rows(message).values())


def test_every_recipient_has_a_row_whatever_the_route(world, send, evening, quiet_site_1):
    categories = ["safety", "protocol_amendment", "visit_reminder", "newsletter"]
    messages = [send(evening, category=category) for category in categories]
    messages += [send(evening + n * MINUTE, send_now=True) for n in range(4)]

    for message in messages:
        assert in_app_people(message) == STUDY_A_PEOPLE, message.subject
        assert message.recipients_count == 3


def test_an_approved_message_is_timed_from_its_approval(world, draft, quiet_site_1):
    """A CRO recruitment push waits for sponsor A's approval; approved at 22:30 in Berlin,
    Site One gets it when its quiet hours end, Site Two at once."""
    submitted = next_year(1, 14, 12)
    evening = next_year(1, 14, 21, 30)
    message = draft(actor=world.cro_pm, category="recruitment_push")
    message = message_send(message=message, actor=world.cro_pm, now=submitted)
    assert not Delivery.objects.filter(message=message).exists()

    message = message_approve(message=message, actor=world.sponsor_lead_a, now=evening)

    due = {person: row.due_at for (person, channel), row in rows(message).items()}
    assert due == {"coord_1": next_year(1, 15, 6), "pi_1": next_year(1, 15, 6), "coord_2": evening}
    assert message.ack_due_at == evening + datetime.timedelta(hours=48)
