"""Tenancy of messages: who sees which message."""

from __future__ import annotations

import pytest
from django.http import Http404

from comms.selectors import message_for_user, messages_for_user
from comms.services import digests_build, message_deliver, message_send


@pytest.fixture
def sent_a(world, draft, now):
    return message_send(message=draft(), actor=world.sponsor_lead_a, now=now)


def test_parties_of_the_study_see_its_messages(world, sent_a):
    for person in ("sponsor_lead_a", "sponsor_viewer_a", "cro_pm", "cra", "sponsor_a_admin"):
        user = getattr(world, person)
        assert list(messages_for_user(user)) == [sent_a], person
        assert message_for_user(user, sent_a.id) == sent_a


@pytest.mark.parametrize(
    "person", ["sponsor_lead_b", "cro_b_pm", "sponsor_b_admin", "site_coord_3", "no_org_user"]
)
def test_other_tenants_see_nothing_and_get_404(world, sent_a, person):
    user = getattr(world, person)
    assert not messages_for_user(user).exists()
    with pytest.raises(Http404):
        message_for_user(user, sent_a.id)


def test_anonymous_and_bad_ids_get_nothing(world, sent_a):
    assert not messages_for_user(None).exists()
    for bad_id in ("abc", None, sent_a.id + 1000):
        with pytest.raises(Http404):
            message_for_user(world.sponsor_lead_a, bad_id)


def test_cro_serving_two_sponsors_sees_each_study_on_its_own(world, draft, sent_a, now):
    sent_b = message_send(
        message=draft(actor=world.sponsor_lead_b, study=world.study_b),
        actor=world.sponsor_lead_b,
        now=now,
    )
    assert set(messages_for_user(world.cro_pm)) == {sent_a, sent_b}
    assert list(messages_for_user(world.cro_b_pm)) == [sent_b]
    assert list(messages_for_user(world.sponsor_lead_b)) == [sent_b]


def test_another_organisations_draft_stays_private(world, draft):
    cro_draft = draft(actor=world.cro_pm)
    assert list(messages_for_user(world.cra)) == [cro_draft], "colleagues see it"
    assert not messages_for_user(world.sponsor_lead_a).exists()
    with pytest.raises(Http404):
        message_for_user(world.sponsor_lead_a, cro_draft.id)


def test_site_user_sees_only_messages_delivered_to_them(world, draft, now):
    to_site_2 = message_send(
        message=draft(audience={"study_sites": [world.ss_a2.id]}, send_now=True),
        actor=world.sponsor_lead_a,
        now=now,
    )
    assert not messages_for_user(world.site_coord_2).exists(), "not delivered yet"
    message_deliver(message_id=to_site_2.id, now=now)

    assert list(messages_for_user(world.site_coord_2)) == [to_site_2]
    assert message_for_user(world.site_coord_2, to_site_2.id) == to_site_2
    for person in ("site_coord_1", "pi_1", "site_coord_3"):
        assert not messages_for_user(getattr(world, person)).exists(), person
        with pytest.raises(Http404):
            message_for_user(getattr(world, person), to_site_2.id)


def test_site_user_sees_a_digested_message_once_its_digest_is_built(
    world, draft, now, after_window
):
    to_site_2 = message_send(
        message=draft(audience={"study_sites": [world.ss_a2.id]}),
        actor=world.sponsor_lead_a,
        now=now,
    )
    message_deliver(message_id=to_site_2.id, now=after_window)
    assert not messages_for_user(world.site_coord_2).exists(), "waiting for the digest"

    digests_build(now=after_window)

    assert list(messages_for_user(world.site_coord_2)) == [to_site_2]
    with pytest.raises(Http404):
        message_for_user(world.site_coord_1, to_site_2.id)
