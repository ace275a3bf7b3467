"""Fixtures for the API tests (the shared ones are in ``tests/conftest.py``)."""

import pytest


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """The production hasher takes most of a second per password; the world has fourteen."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
