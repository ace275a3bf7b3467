"""Message load per study-site and ISO week (``comms.stats``), its API and its page.

Scenarios are built through the comms services with a controlled clock: a Monday 00:00 UTC
two weeks or so ahead (``T0``; role assignments start today, so sending can be dated
forward but not back), with sends, deliveries, digests, acknowledgements and escalations at
known hours, and figures worked out by hand.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind
from comms.services import (
    delivery_acknowledge,
    digests_build,
    escalations_sweep,
    message_deliver,
    message_send,
)
from comms.stats import (
    Load,
    StudyMessageLoad,
    message_load_for_study,
    message_load_rows,
    week_label,
    week_start,
)
from tests.factories import status_cases

pytestmark = pytest.mark.django_db
User = get_user_model()
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
WEEK = datetime.timedelta(days=7)
# Monday 00:00 UTC of the week after next: every send below is in the future of "today".
T0 = datetime.datetime.combine(
    week_start(timezone.now()) + 2 * WEEK, datetime.time(), tzinfo=datetime.UTC
)
W0, W1 = T0.date(), (T0 + WEEK).date()


@pytest.fixture
def world(module_world):
    """Built once for the module: each test rolls its own writes back."""
    return module_world


@pytest.fixture
def send(world, draft):
    """``send(at, **fields)``: a message from sponsor A's lead on study A, sent at ``at``
    and its stand-alone deliveries delivered then."""

    def make(at: datetime.datetime, *, actor=None, **fields):
        actor = actor or world.sponsor_lead_a
        message = message_send(message=draft(actor=actor, **fields), actor=actor, now=at)
        message_deliver(message_id=message.id, now=at)
        return message

    return make


def to_site(study_site, *roles: str) -> dict:
    audience: dict = {"study_sites": [study_site.id]}
    if roles:
        audience["roles"] = list(roles)
    return audience


def acknowledge(user, message, at: datetime.datetime) -> None:
    delivery = Delivery.objects.get(
        recipient=user, message=message, channel=Channel.IN_APP, kind=DeliveryKind.MESSAGE
    )
    delivery_acknowledge(delivery=delivery, actor=user, now=at)


def load_at(world, *, now, weeks: int = 2) -> StudyMessageLoad:
    return message_load_for_study(
        user=world.sponsor_lead_a, study=world.study_a, weeks=weeks, now=now
    )


def cell(result: StudyMessageLoad, study_site, monday: datetime.date) -> Load:
    (site_load,) = [row for row in result.sites if row.study_site.id == study_site.id]
    (week,) = [week for week in site_load.weeks if week.week == monday]
    return week.load


def summary(result: StudyMessageLoad, study_site) -> Load:
    (site_load,) = [row for row in result.sites if row.study_site.id == study_site.id]
    return site_load.summary


# --- figures -----------------------------------------------------------------------------------


def test_median_time_to_acknowledge_key_messages_is_computed_per_site_and_week(world, send):
    coordinator = world.site_coord_1
    audience = to_site(world.ss_a1, "site_coordinator")
    first = send(T0 + HOUR, category="protocol_amendment", audience=audience)
    second = send(T0 + 2 * HOUR, category="recruitment_push", audience=audience)
    acknowledge(coordinator, first, T0 + 6 * HOUR)  # 5 h after sending
    acknowledge(coordinator, second, T0 + 11 * HOUR)  # 9 h after sending

    result = load_at(world, now=T0 + 3 * DAY, weeks=1)

    load = cell(result, world.ss_a1, W0)
    assert (load.median_ack_hours, load.ack_n) == (7.0, 2)
    assert load.standalone == {"critical": 0, "key": 2, "routine": 0, "info": 0}
    assert (load.notifications, load.without_batching, load.reduction) == (2, 2, 0.0)
    untouched = cell(result, world.ss_a2, W0)
    assert (untouched.median_ack_hours, untouched.ack_n, untouched.notifications) == (None, 0, 0)
    assert untouched.reduction is None
    assert (result.totals.summary.median_ack_hours, result.totals.summary.ack_n) == (7.0, 2)


def test_acknowledgements_and_escalations_count_in_the_week_they_happen(world, send):
    coordinator = world.site_coord_1
    audience = to_site(world.ss_a1, "site_coordinator")
    # Sent on Sunday evening of week 0, acknowledged 7 h later on Monday of week 1.
    late = send(T0 + 6 * DAY + 20 * HOUR, category="protocol_amendment", audience=audience)
    acknowledge(coordinator, late, T0 + 7 * DAY + 3 * HOUR)
    # A key message nobody acknowledges: escalated when its 48 h are up, in week 0.
    send(T0 + HOUR, category="study_milestone", audience=audience)
    assert escalations_sweep(now=T0 + 3 * DAY) == 1
    # A critical message at Site Two acknowledged 3 h later, in week 0.
    safety = send(T0 + 2 * HOUR, category="safety", audience=to_site(world.ss_a2))
    acknowledge(world.site_coord_2, safety, T0 + 5 * HOUR)

    result = load_at(world, now=T0 + WEEK + 2 * DAY)

    assert result.week_labels == [week_label(W0), week_label(W1)]
    week0, week1 = cell(result, world.ss_a1, W0), cell(result, world.ss_a1, W1)
    assert (week0.standalone["key"], week0.escalated, week0.ack_n) == (2, 1, 0)
    assert (week1.standalone["key"], week1.median_ack_hours, week1.ack_n) == (0, 7.0, 1)
    site_two = cell(result, world.ss_a2, W0)
    assert (site_two.standalone["critical"], site_two.median_ack_hours) == (1, 3.0)
    # Escalation notices (to the PI, the CRA and the sender) are not message load.
    assert Delivery.objects.filter(kind=DeliveryKind.ESCALATION).exists()
    assert week0.notifications == 2
    # Over both weeks: each site's median from its own acknowledgements; the study's over
    # all of them (3 h and 7 h), never a mean of the sites' medians.
    assert (summary(result, world.ss_a1).median_ack_hours, summary(result, world.ss_a1).ack_n) == (
        7.0,
        1,
    )
    totals = result.totals.summary
    assert (totals.median_ack_hours, totals.ack_n, totals.escalated) == (5.0, 2, 1)
    by_week = {week.week: week.load for week in result.totals.weeks}
    assert (by_week[W0].median_ack_hours, by_week[W1].median_ack_hours) == (3.0, 7.0)


def test_duplicates_in_one_digest_collapse_into_lines(world, send):
    audience = to_site(world.ss_a2)  # Site Two: its coordinator only
    for hour in (1, 2, 3):
        send(T0 + hour * HOUR, audience=audience, dedup_key="visit-data")
    send(T0 + 4 * HOUR, category="query_reminder", audience=audience)
    digests_build(now=T0 + 12 * HOUR)

    load = cell(load_at(world, now=T0 + DAY), world.ss_a2, W0)

    assert (load.digest_items, load.digest_lines, load.dedup_saved) == (4, 2, 2)
    assert (load.digests, load.throttle_saved) == (1, 0)
    assert load.standalone == {"critical": 0, "key": 0, "routine": 0, "info": 0}
    assert (load.notifications, load.without_batching, load.reduction) == (1, 4, 0.75)


def test_digest_items_and_lines_count_per_recipient(world, send):
    audience = to_site(world.ss_a1)  # Site One: its coordinator and its PI
    send(T0 + HOUR, audience=audience, dedup_key="visit-data")
    send(T0 + 2 * HOUR, audience=audience, dedup_key="visit-data")
    send(T0 + 3 * HOUR, category="newsletter", audience=audience)
    digests_build(now=T0 + 12 * HOUR)

    load = cell(load_at(world, now=T0 + DAY), world.ss_a1, W0)

    assert (load.digests, load.digest_items, load.digest_lines, load.dedup_saved) == (2, 6, 4, 2)
    assert (load.notifications, load.without_batching) == (2, 6)


def test_send_now_over_the_daily_limit_is_counted_as_throttle_saved(world, send):
    audience = to_site(world.ss_a2)
    for hour in (1, 2, 3):  # the study's limit is 2 stand-alone routine messages a day
        send(T0 + hour * HOUR, audience=audience, send_now=True)
    assert Delivery.objects.filter(throttled=True).count() == 1, "the third one is throttled"
    digests_build(now=T0 + 12 * HOUR)

    load = cell(load_at(world, now=T0 + DAY), world.ss_a2, W0)

    assert load.standalone["routine"] == 2
    assert (load.throttle_saved, load.digest_items, load.digests) == (1, 1, 1)
    assert (load.notifications, load.without_batching, load.reduction) == (3, 3, 0.0)


def test_weeks_are_split_by_delivery_time_and_pending_deliveries_do_not_count(world, send):
    audience = to_site(world.ss_a2)
    send(T0 + HOUR, audience=audience)
    digests_build(now=T0 + 12 * HOUR)  # week 0
    send(T0 + WEEK + DAY + HOUR, audience=audience)
    send(T0 + WEEK + DAY + 2 * HOUR, audience=audience)
    digests_build(now=T0 + WEEK + DAY + 12 * HOUR)  # week 1
    send(T0 + WEEK + 3 * DAY, audience=audience)  # its digest is not built yet

    result = load_at(world, now=T0 + WEEK + 3 * DAY + HOUR)

    assert [week.week for week in result.totals.weeks] == [W0, W1]
    assert cell(result, world.ss_a2, W0).digest_items == 1
    assert cell(result, world.ss_a2, W1).digest_items == 2
    assert summary(result, world.ss_a2).digest_items == 3
    assert summary(result, world.ss_a2).digests == 2
    # One week back only: week 0 is out of the range.
    only_last = load_at(world, now=T0 + WEEK + 3 * DAY + HOUR, weeks=1)
    assert only_last.totals.summary.digest_items == 2


def test_totals_sum_the_sites_and_rows_cover_several_studies(world, send):
    send(T0 + HOUR, category="protocol_amendment", audience={"all_sites": True})
    send(
        T0 + HOUR,
        actor=world.sponsor_lead_b,
        study=world.study_b,
        category="safety",
        audience={"all_sites": True},
    )
    since, until = T0, T0 + WEEK

    rows = message_load_rows(
        study_ids=[world.study_a.id, world.study_b.id], since=since, until=until
    )

    by_key = {(row.study_site_id, row.week): row.load for row in rows}
    assert by_key[world.ss_a1.id, W0].standalone["key"] == 1
    assert by_key[world.ss_b1.id, W0].standalone["critical"] == 1
    # A message to three sites is three sites' load; people: coord_1 + pi_1, coord_2.
    assert by_key[None, W0].standalone == {"critical": 2, "key": 2, "routine": 0, "info": 0}
    assert by_key[None, None].standalone_received == 3 + 2
    assert by_key[world.ss_a1.id, None].standalone_received == 2
    only_a = message_load_rows(study_ids=[world.study_a.id], since=since, until=until)
    assert {row.study_site_id for row in only_a} == {world.ss_a1.id, world.ss_a2.id, None}


def test_weeks_outside_one_to_fifty_two_is_a_validation_error(world):
    for weeks in (0, 53, "x", None):
        with pytest.raises(ValidationError) as error:
            message_load_for_study(user=world.sponsor_lead_a, study=world.study_a, weeks=weeks)
        assert "weeks" in error.value.message_dict


@pytest.mark.parametrize("persona", ["site_coord_1", "sponsor_lead_b", "cro_b_pm", "no_org_user"])
def test_people_outside_the_study_or_at_a_site_get_404(world, persona):
    user = User.objects.get(pk=getattr(world, persona).pk)
    with pytest.raises(Http404):
        message_load_for_study(user=user, study=world.study_a)


# --- API and page: who gets what -----------------------------------------------------------------


def api_url(w, weeks=None) -> str:
    return f"/api/v1/studies/{w.study_a.id}/message-load/" + (f"?weeks={weeks}" if weeks else "")


def page_url(w, weeks=None) -> str:
    return f"/studies/{w.study_a.id}/message-load/" + (f"?weeks={weeks}" if weeks else "")


# fmt: off
#               lead_a viewer_a lead_b cro_pm cro_b  cra  coord_1 coord_2 no_org anon
EXPECTED = {
    "api":      (200,  200,     404,   200,   404,   200, 404,    404,    404,   401),
    "page":     (200,  200,     404,   200,   404,   200, 404,    404,    404,   302),
}
# fmt: on


@pytest.mark.parametrize(("endpoint", "persona", "expected"), status_cases(EXPECTED))
def test_status(world, api_as, client_as, endpoint, persona, expected):
    user = None if persona == "anonymous" else User.objects.get(pk=getattr(world, persona).pk)
    if endpoint == "api":
        response = api_as(user).get(api_url(world))
    else:
        response = client_as(user).get(page_url(world))
    assert response.status_code == expected, response.content[:300]
    if expected == 302:
        assert response["Location"].startswith("/accounts/login/")


def today_start() -> datetime.datetime:
    """00:00 UTC today: the API and the page read the real clock, and sending cannot be
    dated before today, so their scenarios run from here (all inside the current week)."""
    return datetime.datetime.combine(timezone.now().date(), datetime.time(), tzinfo=datetime.UTC)


def test_api_shape(world, api_as, send):
    start = today_start()
    audience = to_site(world.ss_a1, "site_coordinator")
    key = send(start + HOUR, category="protocol_amendment", audience=audience)
    acknowledge(world.site_coord_1, key, start + 6 * HOUR)

    response = api_as(world.cro_pm).get(api_url(world, weeks=3))

    assert response.status_code == 200
    data = response.json()
    assert data["study"] == world.study_a.id
    assert len(data["weeks"]) == 3
    assert data["weeks"][-1] == week_label(week_start(timezone.now()))
    assert [row["study_site"] for row in data["sites"]] == [world.ss_a1.id, world.ss_a2.id]
    site = data["sites"][0]
    assert (site["site_name"], site["country"]) == ("Site One", "DE")
    assert [week["week"] for week in site["weeks"]] == data["weeks"]
    this_week = site["weeks"][-1]
    assert set(this_week) == {
        "week",
        "standalone",
        "digests",
        "digest_items",
        "digest_lines",
        "dedup_saved",
        "throttle_saved",
        "notifications",
        "without_batching",
        "reduction",
        "median_ack_hours",
        "ack_n",
        "escalated",
    }
    assert this_week["standalone"] == {"critical": 0, "key": 1, "routine": 0, "info": 0}
    assert (this_week["median_ack_hours"], this_week["ack_n"]) == (5.0, 1)
    assert (this_week["notifications"], this_week["reduction"]) == (1, 0.0)
    assert site["summary"]["ack_n"] == 1
    assert data["sites"][1]["summary"]["reduction"] is None
    assert data["totals"]["summary"]["notifications"] == 1
    assert [week["week"] for week in data["totals"]["weeks"]] == data["weeks"]


@pytest.mark.parametrize("weeks", ["0", "53", "twelve", "-1"])
def test_api_bad_weeks_is_400_with_a_field_error(world, api_as, weeks):
    response = api_as(world.sponsor_lead_a).get(api_url(world, weeks=weeks))
    assert response.status_code == 400
    assert "weeks" in response.json()


def test_api_bad_weeks_out_of_reach_is_still_404(world, api_as):
    response = api_as(world.sponsor_lead_b).get(api_url(world, weeks="99"))
    assert response.status_code == 404


def test_page_shows_the_sites_weeks_and_definitions(world, client_as):
    response = client_as(world.cra).get(page_url(world, weeks=4))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Site One" in content and "Site Two" in content
    assert week_label(week_start(timezone.now())) in content
    assert "Definitions" in content and "Dedup saved" in content
    assert content.count("<summary>") == 1 + 2, "all sites, then one per site"


def test_page_bad_weeks_shows_the_form_error(world, client_as):
    response = client_as(world.sponsor_lead_a).get(page_url(world, weeks=60))
    assert response.status_code == 400
    assert "field__error" in response.content.decode()


def test_study_page_links_to_message_load_for_sponsor_and_cro_only(world, client_as):
    link = page_url(world)
    assert link in client_as(world.cro_pm).get(f"/studies/{world.study_a.id}/").content.decode()
    coord = client_as(world.site_coord_1).get(f"/studies/{world.study_a.id}/")
    assert coord.status_code == 200 and link not in coord.content.decode()


# --- query counts --------------------------------------------------------------------------------


def grow(world, send, start: datetime.datetime, rounds: int) -> None:
    """Traffic at both sites of study A on ``start``'s day: key messages, one acknowledged,
    and "send now" routine reminders sharing a dedup key (some throttled) in digests."""
    for index in range(rounds):
        at = start + index * HOUR
        key = send(at, category="protocol_amendment", audience={"all_sites": True})
        acknowledge(world.site_coord_1, key, at + 2 * HOUR)
        for _ in range(3):
            send(at, audience={"all_sites": True}, dedup_key="visit-data", send_now=True)
    digests_build(now=start + 23 * HOUR)


@pytest.mark.parametrize("client_kind", ["api", "page"])
def test_query_count_does_not_grow_with_rows(
    world, send, api_as, client_as, django_assert_max_num_queries, client_kind
):
    def request():
        user = User.objects.get(pk=world.sponsor_lead_a.pk)  # nothing cached on it
        if client_kind == "api":
            return api_as(user), api_url(world, weeks=52)
        return client_as(user), page_url(world, weeks=52)

    def measure() -> int:
        client, url = request()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        return len(queries)

    measure()  # warm per-process caches (content types ...)
    grow(world, send, today_start(), 1)
    small = measure()
    grow(world, send, today_start() + 2 * HOUR, 6)
    assert Delivery.objects.filter(digest__isnull=False).count() > 20, "the data did grow"
    client, url = request()
    with django_assert_max_num_queries(small):
        assert client.get(url).status_code == 200
