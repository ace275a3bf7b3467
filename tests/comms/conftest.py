"""Fixtures for communications tests, on top of the shared two-tenant ``world``."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from comms.services import message_draft_create, message_send
from sites.services import site_preferences_update
from tests.comms.helpers import DIGEST_WAIT, Published
from trialhub.selectors import responsibility_matrix
from trialhub.services import responsibility_matrix_set

# A fixed moment, so due times are exact; role assignments in ``world`` start today.
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def now() -> datetime.datetime:
    return NOW


@pytest.fixture
def set_codes(world):
    """``set_codes(study, area, {organisation: code})``: change one area of a study's matrix
    as its sponsor lead, leaving every other cell as it is."""
    leads = {world.study_a.id: world.sponsor_lead_a, world.study_b.id: world.sponsor_lead_b}

    def change(study, area: str, codes: dict) -> None:
        wanted = {organization.id: code for organization, code in codes.items()}
        entries = [
            {**entry, "code": wanted.get(entry["organization"], entry["code"])}
            if entry["area"] == area
            else entry
            for entry in responsibility_matrix(study)["entries"]
        ]
        responsibility_matrix_set(study=study, entries=entries, actor=leads[study.id])

    return change


@pytest.fixture
def draft(world):
    """``draft(actor=..., study=..., **fields)``: a draft message, by default a visit
    reminder from sponsor A's lead to every site of study A."""

    def make(actor=None, study=None, **fields):
        values = {
            "category": "visit_reminder",
            "subject": "Enter visit data",
            "body": "Please enter the data of last week's visits.",
            "audience": {"all_sites": True},
            **fields,
        }
        return message_draft_create(
            actor=actor or world.sponsor_lead_a, study=study or world.study_a, **values
        )

    return make


@pytest.fixture
def after_window(now) -> datetime.datetime:
    """An instant after the next digest window of every site of ``world``."""
    return now + DIGEST_WAIT


@pytest.fixture
def site_prefs(world):
    """``site_prefs(site, **data)``: change a site's time zone, digest schedule or quiet hours
    as its coordinator, through the service the site's profile page uses."""
    editors = {
        world.site_1.id: world.site_coord_1,
        world.site_2.id: world.site_coord_2,
        world.site_3.id: world.site_coord_3,
    }

    def change(site, **data):
        return site_preferences_update(site=site, actor=editors[site.id], data=data)

    return change


@pytest.fixture
def send(world, draft):
    """``send(at, actor=..., study=..., **fields)``: a draft (see ``draft``) sent at ``at``."""

    def make(at: datetime.datetime, *, actor=None, **fields):
        actor = actor or world.sponsor_lead_a
        return message_send(message=draft(actor=actor, **fields), actor=actor, now=at)

    return make


@pytest.fixture
def published():
    """``published(queue)``: the tasks published to the test broker's queue since the test
    began (see ``tests.comms.helpers.Published``)."""
    return Published()
