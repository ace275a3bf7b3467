"""Shared fixtures: a two-tenant world and clients logged in as its people."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import build_world


def pytest_configure(config):
    from django.conf import settings

    # Password hashing is not under test; the real hasher makes every fixture user slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture(scope="module")
def module_world(django_db_setup, django_db_blocker):
    """The same world, built once per module inside a transaction rolled back at its end;
    for large persona tables (each test's own writes are rolled back by its ``db``)."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture
def client_as():
    """``client_as(user)``: a page client with a session for ``user`` (None: anonymous)."""

    def make(user=None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def api_as():
    """``api_as(user)``: an API client authenticated as ``user`` (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
