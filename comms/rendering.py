"""What a recipient reads: placeholders filled in, and a digest's deliveries as lines."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from comms.models import TEMPLATE_PLACEHOLDERS, Delivery, DeliveryKind

_PLACEHOLDER = re.compile(r"\{(" + "|".join(TEMPLATE_PLACEHOLDERS) + r")\}")


def render_placeholders(text: str, **values: str) -> str:
    """Replace ``{site_name}``-style placeholders that have a value; leave the rest as typed.
    Only the known names are touched, so braces elsewhere in a text are safe."""
    return _PLACEHOLDER.sub(lambda match: values.get(match[1]) or match[0], text)


@dataclass
class DigestLine:
    """One line of a digest: one message, or several sharing a dedup key on one study."""

    subject: str
    category: str
    tier: str
    study_id: int
    study_code: str
    sponsor_name: str
    dedup_key: str
    latest_at: datetime.datetime
    count: int = 0
    message_ids: list[int] = field(default_factory=list)
    throttled: bool = False


def digest_lines(digest_ids: Iterable[int]) -> dict[int, list[DigestLine]]:
    """Each digest's lines, most recent first; one query. Deliveries with the same dedup key
    on the same study collapse into one line with a count (PRODUCT.md "Dedup")."""
    digest_ids = list(digest_ids)
    rows = (
        Delivery.objects.filter(digest_id__in=digest_ids, kind=DeliveryKind.MESSAGE)
        .order_by("digest_id", "-message__sent_at", "-message_id")
        .values_list(
            "digest_id",
            "message_id",
            "message__subject",
            "message__category",
            "message__tier",
            "message__study_id",
            "message__study__code",
            "message__study__sponsor__name",
            "message__dedup_key",
            "message__sent_at",
            "study_site__site__name",
            "throttled",
        )
    )
    lines: dict[int, dict[tuple, DigestLine]] = {digest_id: {} for digest_id in digest_ids}
    for (
        digest_id,
        message_id,
        subject,
        category,
        tier,
        study_id,
        study_code,
        sponsor_name,
        dedup_key,
        sent_at,
        site_name,
        throttled,
    ) in rows:
        key = (study_id, dedup_key) if dedup_key else (study_id, "", message_id)
        line = lines[digest_id].get(key)
        if line is None:
            line = lines[digest_id][key] = DigestLine(
                subject=render_placeholders(subject, site_name=site_name or ""),
                category=category,
                tier=tier,
                study_id=study_id,
                study_code=study_code,
                sponsor_name=sponsor_name,
                dedup_key=dedup_key,
                latest_at=sent_at,
            )
        line.count += 1
        line.message_ids.append(message_id)
        line.throttled = line.throttled or throttled
    return {digest_id: list(by_key.values()) for digest_id, by_key in lines.items()}
