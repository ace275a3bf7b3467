"""Email backends that stand in for an external mail server in tests (not for our code)."""

from __future__ import annotations

from smtplib import SMTPServerDisconnected

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend


class FlakyMailServer(BaseEmailBackend):
    """A mail server that takes ``capacity`` emails, then drops the connection the way an
    SMTP server does (``smtplib`` raises an ``OSError``); ``None`` is no limit. What it took
    is in ``accepted``. Class attributes, so a test sets and resets them."""

    capacity: int | None = None
    accepted: list[EmailMessage] = []

    def send_messages(self, email_messages) -> int:
        server = type(self)
        for message in email_messages:
            if server.capacity is not None and len(server.accepted) >= server.capacity:
                raise SMTPServerDisconnected("Connection unexpectedly closed")
            server.accepted.append(message)
        return len(email_messages)
