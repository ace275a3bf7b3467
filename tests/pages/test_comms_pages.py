"""Communications pages: the inbox (every user), the approvals queue and the sent messages
(sponsor and CRO people), the header counts on every page; who sees what, what the forms do
with and without htmx, and query counts that do not grow with rows."""

from __future__ import annotations

import datetime
import re
from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from comms.models import (
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Message,
    MessageStatus,
)
from comms.services import (
    delivery_acknowledge,
    delivery_mark_read,
    digests_build,
    escalations_sweep,
    message_deliver,
    message_draft_create,
    message_send,
)
from tests.comms.helpers import DIGEST_WAIT
from tests.factories import status_cases
from trialhub.models import RoleAssignment
from trialhub.services import role_assignment_end

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(module_world):
    """Built once for the module: each test rolls its own writes back."""
    return module_world


def text(response) -> str:
    """The page's text with tags and extra whitespace removed, for readable assertions."""
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" .", ".")


def draft(w, actor=None, category="protocol_amendment", study=None, **fields) -> Message:
    """A draft to every site of study A (by sponsor A's lead unless told)."""
    return message_draft_create(
        actor=actor or w.sponsor_lead_a,
        study=study or w.study_a,
        category=category,
        subject=fields.pop("subject", f"About {category}"),
        body=fields.pop("body", "Please read this."),
        audience=fields.pop("audience", {"all_sites": True}),
        **fields,
    )


def send(w, actor=None, category="protocol_amendment", now=None, **fields) -> Message:
    """Sent directly and its due deliveries delivered (the delivery task's service)."""
    actor = actor or w.sponsor_lead_a
    message = message_send(message=draft(w, actor, category, **fields), actor=actor, now=now)
    message_deliver(message_id=message.id, now=now)
    return message


def pending(w, **fields) -> Message:
    """A CRO recruitment push: the CRO is only Informed, so it waits for sponsor A's lead."""
    message = draft(w, w.cro_pm, "recruitment_push", **fields)
    return message_send(message=message, actor=w.cro_pm)


def item_of(user, message) -> Delivery:
    return Delivery.objects.get(
        kind=DeliveryKind.MESSAGE, recipient=user, message=message, channel=Channel.IN_APP
    )


# --- persona x page x tenant -----------------------------------------------------------------

# page: (method, path builder, form data builder or None)
PAGES = {
    "inbox": ("get", lambda w: "/inbox/", None),
    "inbox-item": ("get", lambda w: f"/inbox/{item_of(w.site_coord_1, send(w)).id}/", None),
    "inbox-ack": (
        "post",
        lambda w: f"/inbox/{item_of(w.site_coord_1, send(w)).id}/acknowledge/",
        None,
    ),
    "approvals": ("get", lambda w: "/approvals/", None),
    "approve": ("post", lambda w: f"/approvals/{pending(w).id}/approve/", None),
    "reject": (
        "post",
        lambda w: (message := pending(w)) and f"/approvals/{message.id}/reject/",
        lambda path: {f"reject-{path.split('/')[2]}-reason": "Wait for the newsletter."},
    ),
    "sent": ("get", lambda w: "/messages/sent/", None),
    "message": ("get", lambda w: f"/messages/{send(w).id}/", None),
    "draft": ("get", lambda w: f"/messages/{draft(w).id}/", None),
    "endorse": ("post", lambda w: f"/messages/{send(w).id}/endorse/", None),
}

# fmt: off
#               lead_a viewer_a lead_b cro_pm cro_b  cra  coord_1 coord_2 no_org anon
EXPECTED = {
    "inbox":      (200,  200,     200,   200,   200,   200, 200,    200,    200,   302),
    # Site One's coordinator's own item: nobody else's business.
    "inbox-item": (404,  404,     404,   404,   404,   404, 200,    404,    404,   302),
    "inbox-ack":  (404,  404,     404,   404,   404,   404, 302,    404,    404,   302),
    # Sponsor and CRO pages: a site person (or no organisation) gets 404.
    "approvals":  (200,  200,     200,   200,   200,   200, 404,    404,    404,   302),
    # The Accountable sponsor decides; the CRO sees its own message but may not (403).
    "approve":    (302,  403,     404,   403,   404,   403, 404,    404,    404,   302),
    "reject":     (302,  403,     404,   403,   404,   403, 404,    404,    404,   302),
    "sent":       (200,  200,     200,   200,   200,   200, 404,    404,    404,   302),
    "message":    (200,  200,     404,   200,   404,   200, 404,    404,    404,   302),
    "draft":      (200,  200,     404,   404,   404,   404, 404,    404,    404,   302),
    "endorse":    (302,  403,     404,   403,   404,   403, 404,    404,    404,   302),
}
# fmt: on


def test_matrix_covers_every_page():
    assert set(EXPECTED) == set(PAGES)


@pytest.mark.parametrize(("page", "persona", "expected"), status_cases(EXPECTED))
def test_status(world, client_as, page, persona, expected):
    method, path_for, data_for = PAGES[page]
    path = path_for(world)
    user = None if persona == "anonymous" else getattr(world, persona)
    client = client_as(user)
    data = data_for(path) if data_for else {}
    response = getattr(client, method)(path, data)
    assert response.status_code == expected, f"{persona} {method.upper()} {path}"
    if user is None:
        assert response["Location"].startswith("/accounts/login/"), "anonymous: log in first"


def test_forbidden_action_says_why(world, client_as):
    message = pending(world)
    response = client_as(world.sponsor_viewer_a).post(f"/approvals/{message.id}/approve/")
    assert response.status_code == 403
    assert "Only the party Accountable for recruitment" in text(response)
    assert Message.objects.get(pk=message.pk).status == MessageStatus.PENDING_APPROVAL


# --- the inbox -------------------------------------------------------------------------------


def test_inbox_pins_critical_and_key_above_the_rest(world, client_as):
    send(world, category="newsletter", subject="Monthly news", send_now=False)
    send(world, category="scheduling", subject="Room booking", send_now=True)
    send(world, category="protocol_amendment", subject="Amendment 4")
    send(world, category="safety", subject="Dose hold")

    page = client_as(world.site_coord_1).get("/inbox/")

    html = page.content.decode()
    pinned, rest = html.split('id="others-title"')
    assert 'class="inbox-section inbox-section--pinned"' in pinned
    assert pinned.index("Dose hold") < pinned.index("Amendment 4"), "critical first"
    assert "inbox-item--critical inbox-item--pinned" in pinned
    assert "inbox-item--key inbox-item--pinned" in pinned
    assert "Room booking" in rest and "Room booking" not in pinned
    assert "Monthly news" not in html, "the newsletter waits for the digest"
    assert "Acknowledge by" in pinned


def test_overdue_items_say_so(world, client_as):
    message = send(world, category="protocol_amendment", subject="Amendment 5")
    # Each delivery carries its own due time (the message's, or later after quiet hours).
    Delivery.objects.filter(message=message, recipient=world.site_coord_1).update(
        ack_due_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    page = text(client_as(world.site_coord_1).get("/inbox/"))
    assert "Overdue Acknowledge by" in page
    assert "Overdue" not in text(client_as(world.pi_1).get("/inbox/")), "still due for the PI"


def test_opening_an_item_shows_it_for_the_site_and_marks_it_read(world, client_as):
    message = send(
        world,
        category="sponsor_letter",
        subject="A letter to {site_name}",
        body="Dear team at {site_name}, thank you.",
    )
    item = item_of(world.site_coord_2, message)
    assert item.state == DeliveryState.DELIVERED

    page = text(client_as(world.site_coord_2).get(f"/inbox/{item.id}/"))

    assert "A letter to Site Two" in page
    assert "Dear team at Site Two, thank you." in page
    assert "From Sponsor A" in page
    assert "A-001" in page
    item.refresh_from_db()
    assert item.state == DeliveryState.READ and item.read_at is not None


def test_endorsed_message_shows_the_sponsor_badge(world, client_as):
    message = send(world, category="protocol_amendment", subject="Amendment 6")
    client_as(world.sponsor_lead_a).post(f"/messages/{message.id}/endorse/")
    item = item_of(world.site_coord_1, message)
    assert "Endorsed by Sponsor A" in text(client_as(world.site_coord_1).get("/inbox/"))
    assert "Endorsed by Sponsor A" in text(client_as(world.site_coord_1).get(f"/inbox/{item.id}/"))


def test_acknowledge_with_htmx_swaps_the_row_and_the_header_counts(world, client_as):
    message = send(world, category="protocol_amendment", subject="Amendment 7")
    item = item_of(world.site_coord_1, message)
    client = client_as(world.site_coord_1)
    assert "1 to acknowledge" in text(client.get("/inbox/"))

    response = client.post(f"/inbox/{item.id}/acknowledge/", {"next": "/inbox/"}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<li class="inbox-item'), "the row comes first"
    assert f'id="inbox-item-{item.id}"' in html
    assert "Acknowledged" in text(response)
    assert 'id="inbox-nav"' in html and 'hx-swap-oob="true"' in html
    assert "to acknowledge" not in text(response), "nothing left to acknowledge"
    assert "<html" not in html, "a fragment, not a page"
    item.refresh_from_db()
    assert item.state == DeliveryState.ACKNOWLEDGED and item.acknowledged_at is not None


def test_acknowledge_on_the_item_page_with_htmx_swaps_its_box(world, client_as):
    message = send(world, category="safety", subject="Dose hold")
    item = item_of(world.site_coord_1, message)
    client = client_as(world.site_coord_1)
    page = client.get(f"/inbox/{item.id}/").content.decode()
    assert 'hx-target="#ack-box"' in page

    response = client.post(
        f"/inbox/{item.id}/acknowledge/", {"fragment": "detail", "next": "/x/"}, **HTMX
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="ack-box"')
    assert "Acknowledged on" in text(response)
    assert 'hx-swap-oob="true"' in html


def test_acknowledge_without_javascript_redirects_back(world, client_as):
    message = send(world, category="protocol_amendment", subject="Amendment 8")
    item = item_of(world.site_coord_1, message)
    client = client_as(world.site_coord_1)

    response = client.post(f"/inbox/{item.id}/acknowledge/", {"next": "/inbox/?tier=key"})

    assert response.status_code == 302 and response["Location"] == "/inbox/?tier=key"
    item.refresh_from_db()
    assert item.state == DeliveryState.ACKNOWLEDGED
    followed = client.get(response["Location"])
    assert "Acknowledged." in text(followed)


def test_acknowledge_never_redirects_off_site(world, client_as):
    item = item_of(world.site_coord_1, send(world))
    response = client_as(world.site_coord_1).post(
        f"/inbox/{item.id}/acknowledge/", {"next": "https://evil.example/"}
    )
    assert response["Location"] == "/inbox/"


def test_acknowledging_a_routine_message_is_refused_with_a_message(world, client_as):
    message = send(world, category="scheduling", subject="Room booking", send_now=True)
    item = item_of(world.site_coord_1, message)
    client = client_as(world.site_coord_1)
    response = client.post(f"/inbox/{item.id}/acknowledge/", follow=True)
    assert "This message does not need acknowledging." in text(response)
    item.refresh_from_db()
    assert item.state == DeliveryState.DELIVERED


def test_another_users_item_is_a_404_for_every_action(world, client_as):
    item = item_of(world.site_coord_1, send(world))
    client = client_as(world.site_coord_2)
    assert client.get(f"/inbox/{item.id}/").status_code == 404
    assert client.get(f"/inbox/{item.id}/row/", **HTMX).status_code == 404
    assert client.post(f"/inbox/{item.id}/acknowledge/", **HTMX).status_code == 404
    item.refresh_from_db()
    assert item.state == DeliveryState.DELIVERED


@pytest.fixture
def digest(world):
    """Site One's coordinator's digest: three reminders sharing a dedup key and a newsletter,
    built when the window comes."""
    now = timezone.now()
    for _ in range(3):
        send(
            world,
            category="visit_reminder",
            subject="Enter visit data for {site_name}",
            dedup_key="visits",
            now=now,
        )
    send(world, category="newsletter", subject="Monthly news", now=now)
    digests_build(now=now + DIGEST_WAIT)
    return Delivery.objects.get(
        kind=DeliveryKind.DIGEST, recipient=world.site_coord_1, channel=Channel.IN_APP
    )


def test_digest_row_expands_to_its_lines_with_counts(world, client_as, digest):
    page = client_as(world.site_coord_1).get("/inbox/")
    html = page.content.decode()
    assert "Digest · 2 updates" in text(page)
    assert "3× Enter visit data for Site One" in text(page)
    assert "Monthly news" in text(page)
    assert "<details" in html and 'hx-trigger="toggle once"' in html


def test_opening_a_digest_reads_it_and_its_lines(world, client_as, digest):
    page = text(client_as(world.site_coord_1).get(f"/inbox/{digest.id}/"))
    assert "3× Enter visit data for Site One" in page
    digest.refresh_from_db()
    assert digest.state == DeliveryState.READ
    lines = Delivery.objects.filter(digest_id=digest.digest_id, kind=DeliveryKind.MESSAGE)
    assert set(lines.values_list("state", flat=True)) == {DeliveryState.READ}


def test_expanding_a_digest_with_htmx_reads_it_and_refreshes_the_counts(world, client_as, digest):
    client = client_as(world.site_coord_1)
    assert "1 unread" in text(client.get("/"))

    response = client.get(f"/inbox/{digest.id}/row/?next=/inbox/", **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert '<details class="digest" open>' in html, "opened, and no second request"
    assert "3× Enter visit data" in text(response)
    assert 'hx-swap-oob="true"' in html and "unread" not in text(response)
    digest.refresh_from_db()
    assert digest.state == DeliveryState.READ


def test_digest_row_without_htmx_goes_to_the_item_page(world, client_as, digest):
    response = client_as(world.site_coord_1).get(f"/inbox/{digest.id}/row/")
    assert response.status_code == 302 and response["Location"] == f"/inbox/{digest.id}/"


def test_escalation_reads_not_acknowledged_at_the_site(world, client_as):
    message = send(world, category="safety", subject="Dose hold")
    escalations_sweep(now=message.ack_due_at)
    message_deliver(message_id=message.id, now=message.ack_due_at)

    page = text(client_as(world.pi_1).get("/inbox/"))
    assert "Not acknowledged at Site One: Dose hold" in page
    assert "Not acknowledged at Site Two: Dose hold" not in page, "the PI's own site only"
    sender = text(client_as(world.sponsor_lead_a).get("/inbox/"))
    assert "Not acknowledged at Site One: Dose hold" in sender
    assert "Not acknowledged at Site Two: Dose hold" in sender


@pytest.fixture
def mixed_inbox(world):
    """Site One's coordinator: a key message of each sponsor, one acknowledged."""
    key_a = send(world, category="protocol_amendment", subject="Amendment A")
    key_b = send(
        world,
        actor=world.sponsor_lead_b,
        study=world.study_b,
        category="protocol_amendment",
        subject="Amendment B",
    )
    send(world, category="scheduling", subject="Room booking", send_now=True)
    coord = world.site_coord_1
    delivery_acknowledge(delivery=item_of(coord, key_a), actor=coord)
    return key_a, key_b


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("study={a}", ["Amendment A", "Room booking"], ["Amendment B"]),
        ("sponsor={sponsor_b}", ["Amendment B"], ["Amendment A", "Room booking"]),
        ("tier=routine", ["Room booking"], ["Amendment A", "Amendment B"]),
        ("state=acknowledged", ["Amendment A"], ["Amendment B", "Room booking"]),
        ("state=unread&tier=key", ["Amendment B"], ["Amendment A", "Room booking"]),
    ],
)
def test_inbox_filters(world, client_as, mixed_inbox, query, shown, hidden):
    query = query.format(a=world.study_a.id, sponsor_b=world.sponsor_b.id)
    page = text(client_as(world.site_coord_1).get(f"/inbox/?{query}"))
    for subject in shown:
        assert subject in page, f"{query}: {subject} shown"
    for subject in hidden:
        assert subject not in page, f"{query}: {subject} hidden"


def test_filter_choices_are_the_users_own_studies_and_sponsors(world, client_as):
    html = client_as(world.site_coord_2).get("/inbox/").content.decode()
    assert f'<option value="{world.study_a.id}"' in html
    assert f'<option value="{world.study_b.id}"' not in html
    assert "Sponsor B" not in html


def test_a_study_out_of_reach_is_a_filter_error_not_a_leak(world, client_as, mixed_inbox):
    page = client_as(world.site_coord_2).get(f"/inbox/?study={world.study_b.id}")
    assert page.status_code == 200
    assert "Select a valid choice" in text(page)
    assert "Amendment A" in text(page), "the invalid filter is not applied"


def test_inbox_empty_states(world, client_as, mixed_inbox):
    assert "Your inbox is empty" in text(client_as(world.cro_b_pm).get("/inbox/"))
    page = text(client_as(world.site_coord_1).get("/inbox/?tier=critical"))
    assert "Nothing matches these filters" in page


def test_inbox_paginates_by_25(world, client_as):
    for number in range(26):
        send(world, category="protocol_amendment", subject=f"Amendment {number}")
    page = text(client_as(world.site_coord_1).get("/inbox/"))
    assert "Page 1 of 2" in page


# --- header counts ---------------------------------------------------------------------------


def test_header_counts_on_the_dashboard(world, client_as):
    first = send(world, category="protocol_amendment", subject="Amendment 1")
    send(world, category="safety", subject="Dose hold")
    send(world, category="scheduling", subject="Room booking", send_now=True)
    coord = world.site_coord_1
    delivery_mark_read(delivery=item_of(coord, first), actor=coord)

    response = client_as(coord).get("/")

    html = response.content.decode()
    assert 'id="inbox-nav"' in html and 'href="/inbox/"' in html
    page = text(response)
    assert "Inbox 2 unread 2 to acknowledge" in page


def test_header_has_no_badges_for_an_empty_inbox_and_no_inbox_for_visitors(world, client_as):
    html = client_as(world.site_coord_3).get("/").content.decode()
    assert 'id="inbox-nav"' in html and "nav-badge" not in html
    login = client_as(None).get("/accounts/login/").content.decode()
    assert 'id="inbox-nav"' not in login


def test_navigation_shows_sender_pages_only_to_sponsors_and_cros(world, client_as):
    sponsor = client_as(world.sponsor_lead_a).get("/").content.decode()
    site = client_as(world.site_coord_1).get("/").content.decode()
    for link in ('href="/approvals/"', 'href="/messages/sent/"'):
        assert link in sponsor and link not in site
    assert 'href="/inbox/"' in site and "htmx-2.min.js" in site


# --- approvals -------------------------------------------------------------------------------


def test_approvals_queue_shows_what_the_message_would_do(world, client_as):
    pending(world, subject="Recruit more", body="Please screen more patients.")
    page = text(client_as(world.sponsor_lead_a).get("/approvals/"))
    assert "Recruit more" in page
    assert "Please screen more patients." in page
    assert "All sites · coordinators and investigators" in page
    assert "Recipients today 3 people" in page, "coord_1, coord_2 and pi_1 on study A"
    assert "Shared CRO" in page and "A-001" in page and "Recruitment push" in page


def test_approvals_audience_names_chosen_sites_and_roles(world, client_as):
    pending(
        world,
        audience={"study_sites": [world.ss_a2.id], "roles": ["site_coordinator"]},
        subject="Coordinators of Site Two",
    )
    page = text(client_as(world.sponsor_lead_a).get("/approvals/"))
    assert "Site Two · coordinators" in page
    assert "Recipients today 1 person" in page


def test_approve_sends_with_the_reason(world, client_as):
    message = pending(world, subject="Recruit more")
    response = client_as(world.sponsor_lead_a).post(
        f"/approvals/{message.id}/approve/",
        {f"approve-{message.id}-reason": "Agreed at the kick-off"},
        follow=True,
    )
    assert "Approved and sent: Recruit more" in text(response)
    assert "Nothing waits for your approval" in text(response)
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.decisions.get().reason == "Agreed at the kick-off"


def test_reject_needs_a_reason(world, client_as):
    message = pending(world, subject="Recruit more")
    response = client_as(world.sponsor_lead_a).post(
        f"/approvals/{message.id}/reject/", {f"reject-{message.id}-reason": "  "}
    )
    assert response.status_code == 400
    assert "Say why the message is rejected." in text(response)
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING_APPROVAL
    assert not message.decisions.exists()


def test_reject_with_a_reason(world, client_as):
    message = pending(world, subject="Recruit more")
    response = client_as(world.sponsor_lead_a).post(
        f"/approvals/{message.id}/reject/",
        {f"reject-{message.id}-reason": "Conflicts with our letter"},
        follow=True,
    )
    assert "Rejected: Recruit more" in text(response)
    message.refresh_from_db()
    assert message.status == MessageStatus.REJECTED


def test_approving_when_no_one_is_reached_any_more_is_a_form_error(world, client_as):
    message = pending(world, audience={"study_sites": [world.ss_a2.id]}, subject="Site Two")
    for assignment in RoleAssignment.objects.active().filter(study_site=world.ss_a2):
        role_assignment_end(assignment=assignment, actor=world.cro_pm, reason="Left the site")
    response = client_as(world.sponsor_lead_a).post(f"/approvals/{message.id}/approve/")
    assert response.status_code == 400
    assert "No one in this audience holds a site role yet." in text(response)
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING_APPROVAL


def test_deciding_twice_explains_instead_of_failing(world, client_as):
    message = pending(world, subject="Recruit more")
    client = client_as(world.sponsor_lead_a)
    client.post(f"/approvals/{message.id}/approve/")
    response = client.post(
        f"/approvals/{message.id}/reject/", {f"reject-{message.id}-reason": "Too late"}
    )
    assert response.status_code == 400
    assert "This message is not waiting for approval." in text(response)


def test_endorsement_requests_are_listed_for_the_sponsor_lead(world, client_as):
    message = pending(world, subject="Co-sign me", endorsement_requested=True)
    lead = text(client_as(world.sponsor_lead_a).get("/approvals/"))
    assert "Endorsement requested" in lead and "Co-sign me" in lead
    viewer = client_as(world.sponsor_viewer_a).get("/approvals/").content.decode()
    assert f'href="/messages/{message.id}/"' not in viewer


# --- sent messages ---------------------------------------------------------------------------


def test_sent_page_shows_each_messages_progress(world, client_as):
    key = send(world, category="protocol_amendment", subject="Amendment 9")
    send(world, category="visit_reminder", subject="Enter visits")
    draft(world, subject="Unsent idea")
    delivery_acknowledge(delivery=item_of(world.site_coord_1, key), actor=world.site_coord_1)
    delivery_mark_read(delivery=item_of(world.site_coord_2, key), actor=world.site_coord_2)

    response = client_as(world.sponsor_lead_a).get("/messages/sent/")

    rows = {
        row.split(" ", 2)[1]: row
        for row in re.findall(r"<tr>.*?</tr>", response.content.decode(), re.S)[1:]
        for row in [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))]
    }
    key_row = next(row for row in rows.values() if "Amendment 9" in row)
    assert "Sent 3 3 2 read 0 1 of 3" in key_row, key_row
    digest_row = next(row for row in rows.values() if "Enter visits" in row)
    assert "3 0 0 read 3 3 for digest not needed" in digest_row, digest_row
    draft_row = next(row for row in rows.values() if "Unsent idea" in row)
    assert "Draft" in draft_row


def test_sent_page_lists_only_the_organisations_messages(world, client_as):
    send(world, subject="From the sponsor")
    pending(world, subject="From the CRO")
    sponsor = text(client_as(world.sponsor_lead_a).get("/messages/sent/"))
    cro = text(client_as(world.cro_pm).get("/messages/sent/"))
    assert "From the sponsor" in sponsor and "From the CRO" not in sponsor
    assert "From the CRO" in cro and "From the sponsor" not in cro
    assert "Pending approval" in cro
    assert "No messages yet" in text(client_as(world.sponsor_lead_b).get("/messages/sent/"))


def test_message_page_shows_progress_per_site_and_overdue(world, client_as):
    message = send(world, category="protocol_amendment", subject="Amendment 10")
    delivery_acknowledge(delivery=item_of(world.pi_1, message), actor=world.pi_1)
    Message.objects.filter(pk=message.pk).update(
        ack_due_at=timezone.now() - datetime.timedelta(hours=1)
    )

    response = client_as(world.sponsor_lead_a).get(f"/messages/{message.id}/")

    page = text(response)
    assert "Acknowledged 1 of 3" in page
    assert "Site One 2 1 1" in page, "coordinator and PI; the PI acknowledged"
    assert "Site Two 1 0 1" in page
    assert "Due time passed" in page
    assert "Sent without approval" in page


def test_message_page_lists_the_approval_decisions(world, client_as):
    message = pending(world, subject="Recruit more")
    client_as(world.sponsor_lead_a).post(
        f"/approvals/{message.id}/approve/", {f"approve-{message.id}-reason": "Fine by us"}
    )
    page = text(client_as(world.cro_pm).get(f"/messages/{message.id}/"))
    assert "Approved by" in page and "Fine by us" in page


def test_sponsor_lead_endorses_a_key_message_once(world, client_as):
    message = pending(world, subject="Recruit more", endorsement_requested=True)
    lead = client_as(world.sponsor_lead_a)
    page = lead.get(f"/messages/{message.id}/").content.decode()
    assert f'action="/messages/{message.id}/endorse/"' in page
    cro_page = client_as(world.cro_pm).get(f"/messages/{message.id}/").content.decode()
    assert "/endorse/" not in cro_page, "only the sponsor lead sees the button"

    response = lead.post(f"/messages/{message.id}/endorse/", follow=True)

    assert "Endorsed: sites see the message" in text(response)
    assert "/endorse/" not in response.content.decode()
    message.refresh_from_db()
    assert message.endorsed_by == world.sponsor_lead_a
    again = lead.post(f"/messages/{message.id}/endorse/")
    assert again.status_code == 400
    assert "This message is endorsed already." in text(again)


def test_routine_messages_offer_no_endorsement(world, client_as):
    message = send(world, category="scheduling", subject="Room booking", send_now=True)
    page = client_as(world.sponsor_lead_a).get(f"/messages/{message.id}/").content.decode()
    assert "/endorse/" not in page


# --- query counts ----------------------------------------------------------------------------

SMALL, LARGE = 2, 6
serial = count()


def grow(w, n: int) -> None:
    """``n`` more of each kind of row: key and critical messages (one escalated), stand-alone
    routine messages, a digest per site person, drafts and messages pending approval."""
    for _ in range(n):
        number = next(serial)
        key = send(w, category="protocol_amendment", subject=f"Amendment {number}")
        delivery_acknowledge(delivery=item_of(w.site_coord_1, key), actor=w.site_coord_1)
        send(w, category="scheduling", subject=f"Booking {number}", send_now=True)
        at = timezone.now() + datetime.timedelta(days=2 * number + 1)
        for category in ("visit_reminder", "visit_reminder", "newsletter"):
            message = draft(w, category=category, subject=f"{category} {number}", dedup_key="v")
            message_send(message=message, actor=w.sponsor_lead_a, now=at)
        safety = message_send(
            message=draft(w, category="safety", subject=f"Safety {number}"),
            actor=w.sponsor_lead_a,
            now=at,
        )
        message_deliver(message_id=safety.id, now=at)
        digests_build(now=at + DIGEST_WAIT)
        escalations_sweep(now=safety.ack_due_at)
        message_deliver(message_id=safety.id, now=safety.ack_due_at)
        draft(w, subject=f"Draft {number}")
        pending(w, subject=f"Pending {number}", audience={"study_sites": [w.ss_a1.id]})


QUERY_PAGES = {
    "inbox": ("site_coord_1", "/inbox/"),
    "inbox-pi": ("pi_1", "/inbox/"),
    "inbox-filtered": ("site_coord_1", "/inbox/?tier=key&state=unread&study={study_a}"),
    "sent": ("sponsor_lead_a", "/messages/sent/"),
    "sent-cro": ("cro_pm", "/messages/sent/"),
    "approvals": ("sponsor_lead_a", "/approvals/"),
}


def measure(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize(("persona", "url"), QUERY_PAGES.values(), ids=QUERY_PAGES.keys())
def test_query_count_does_not_grow_with_rows(
    world, client_as, django_assert_max_num_queries, persona, url
):
    url = url.format(study_a=world.study_a.id)
    client = client_as(getattr(world, persona))
    grow(world, SMALL)
    small = measure(client, url)
    grow(world, LARGE - SMALL)
    with django_assert_max_num_queries(small):
        response = client.get(url)
    assert response.status_code == 200
    assert small <= 14, f"{url}: {small} queries"
