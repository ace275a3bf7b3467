"""Page tests build the world once per test; a fast hasher keeps that cheap (log-in still
checks the password for real)."""

import pytest


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
