"""The CRO scorecard's test world, shared by the API and export tests.

Study B: the shared CRO monitors Site One (two CRAs this year: turnover 1 of 1), the B-only
CRO Site Three. Site One was selected 59 days before activation and enrolled its first
patient 10 days after it. One milestone notice (key: delivered stand-alone) from the shared
CRO reaches Site One (1 message / (1 study-site × 12 weeks) = 0.08), not acknowledged.
Survey answers ``(clarity, support, CRA responsiveness, comment)`` about each CRO are given
by the caller.
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from comms.models import MessageStatus
from comms.services import message_approve, message_deliver, message_draft_create, message_send
from performance.models import Survey, SurveyResponse
from sites.models import StudySite
from tests.factories import member
from trialhub.models import RoleAssignment, StudyRole


def build_cro_world(world, *, shared_answers: list[tuple], b_only_answers: list[tuple]):
    w = world
    w.cra_b = member(w.cro_b, "cra_b")
    today = timezone.localdate()
    RoleAssignment.objects.create(
        user=w.cra_2, role=StudyRole.CRA, study=w.study_b, study_site=w.ss_b1,
        start_date=today - datetime.timedelta(days=40),
    )  # fmt: skip
    RoleAssignment.objects.create(
        user=w.cra_b, role=StudyRole.CRA, study=w.study_b, study_site=w.ss_b3,
        start_date=today - datetime.timedelta(days=100),
    )  # fmt: skip
    StudySite.objects.filter(pk=w.ss_b1.pk).update(
        selected_on=datetime.date(2026, 1, 1),
        activated_on=datetime.date(2026, 3, 1),
        first_patient_in_on=datetime.date(2026, 3, 11),
    )
    survey = Survey.objects.create(
        study=w.study_b, title="Q3 feedback", opened_by=w.sponsor_lead_b,
        opened_by_organization=w.sponsor_b,
    )  # fmt: skip
    answers = [(w.cro, w.ss_b1, w.site_org_1, answer) for answer in shared_answers]
    answers += [(w.cro_b, w.ss_b3, w.site_org_3, answer) for answer in b_only_answers]
    for index, (cro, study_site, site_org, answer) in enumerate(answers):
        clarity, support, cra, comment = answer
        SurveyResponse.objects.create(
            survey=survey, study_site=study_site, respondent=member(site_org, f"answer_{index}"),
            cro=cro, communication_clarity=clarity, support=support, cra_responsiveness=cra,
            comment=comment,
        )  # fmt: skip
    draft = message_draft_create(
        actor=w.cro_pm, study=w.study_b, category="study_milestone", subject="Site activated",
        body="Recruitment may start.", audience={"study_sites": [w.ss_b1.id]},
    )  # fmt: skip
    message = message_send(message=draft, actor=w.cro_pm)
    if message.status == MessageStatus.PENDING_APPROVAL:
        message = message_approve(message=message, actor=w.sponsor_lead_b)
    message_deliver(message_id=message.id)
    return w
