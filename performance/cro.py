"""The CRO scorecard: how each engaged CRO serves the sites of a sponsor's studies.

A CRO's **study-sites** are those of the given studies where one of its CRAs held a
study-site assignment at any time in the 12 months before ``today``. Over them:

- ``cra_turnover``: the share of its study-sites whose CRA changed in those 12 months (two or
  more distinct CRAs, of any organisation, assigned within the window); n = its study-sites.
- ``messages_per_site_week``: messages the CRO sent that reached its study-sites in the last
  12 ISO weeks (in-app, one per message and study-site, stand-alone or in a digest), divided
  by study-sites × 12 weeks; n = its study-sites.
- ``key_ack_hours``: the median hours from delivery to acknowledgement of key and critical
  in-app deliveries at its study-sites acknowledged in the 12 months (from anyone: how
  responsive its sites are); n = the acknowledgements.
- ``activation_days`` / ``first_patient_days``: medians of selected → activated and
  activated → first patient in over its activated study-sites; n = those study-sites.
- ``feedback``: site feedback survey answers attributed to the CRO
  (``performance.selectors.surveys.survey_feedback_by_cro``): n and the mean per question,
  the means hidden below three answers so that no site can be singled out.

Values are ``None`` when n is 0. One query per CRO for the medians, four more in all.
Tenancy: none here; callers pass studies resolved through ``trialhub.selectors``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from statistics import median

from django.db.models import Count, F, Q

from comms.models import ACK_TIERS, Channel, Delivery, DeliveryKind
from comms.stats import Hours, Median
from performance.kpis import KpiValue
from performance.selectors.surveys import survey_feedback_by_cro
from sites.models import StudySite
from trialhub.models import Engagement, Organization, RoleAssignment, Study, StudyRole

WINDOW_WEEKS = 12


@dataclass
class CroScore:
    cro: Organization
    studies: list[Study]
    study_site_count: int
    cra_turnover: KpiValue
    messages_per_site_week: KpiValue
    key_ack_hours: KpiValue
    activation_days: KpiValue
    first_patient_days: KpiValue
    feedback: dict = field(default_factory=dict)

    def as_api(self) -> dict:
        def pair(value: KpiValue) -> dict:
            return {"value": value.value, "n": value.n}

        feedback = self.feedback or {"n": 0, "means": {}, "hidden": False}
        return {
            "cro": {"id": self.cro.id, "name": self.cro.name},
            "studies": [study.id for study in self.studies],
            "study_sites": self.study_site_count,
            "cra_turnover": pair(self.cra_turnover),
            "messages_per_site_week": pair(self.messages_per_site_week),
            "key_ack_hours": pair(self.key_ack_hours),
            "activation_days": pair(self.activation_days),
            "first_patient_days": pair(self.first_patient_days),
            "feedback": {
                "n": feedback["n"],
                "hidden": feedback["hidden"],
                "means": {
                    question: None if feedback["hidden"] else float(mean)
                    for question, mean in feedback["means"].items()
                },
            },
        }


def _year_before(today: datetime.date) -> datetime.date:
    return (
        today.replace(year=today.year - 1)
        if (today.month, today.day) != (2, 29)
        else (today - datetime.timedelta(days=365))
    )


def _cra_assignments(study_ids: list[int], since: datetime.date, today: datetime.date):
    return (
        RoleAssignment.objects.filter(
            study_id__in=study_ids, role=StudyRole.CRA, study_site__isnull=False,
            start_date__lte=today,
        )
        .filter(Q(end_date__isnull=True) | Q(end_date__gt=since))
        .values_list("study_site_id", "user_id", "user__membership__organization_id")
    )  # fmt: skip


def _median_value(values: list[int]) -> KpiValue:
    return KpiValue(round(float(median(values)), 1) if values else None, len(values))


def cro_scores(
    *, studies: list[Study], cros: list[Organization], now: datetime.datetime
) -> list[CroScore]:
    """One ``CroScore`` per CRO over the given studies (see the module docstring), in the
    order of ``cros``."""
    today = now.date()
    since = _year_before(today)
    study_ids = [study.id for study in studies]
    cras_by_site: dict[int, set[int]] = {}
    sites_by_cro: dict[int, set[int]] = {}
    for study_site_id, user_id, cro_id in _cra_assignments(study_ids, since, today):
        cras_by_site.setdefault(study_site_id, set()).add(user_id)
        sites_by_cro.setdefault(cro_id, set()).add(study_site_id)
    milestones = {
        row["id"]: row
        for row in StudySite.objects.filter(study_id__in=study_ids).values(
            "id", "study_id", "selected_on", "activated_on", "first_patient_in_on"
        )
    }
    week_since = now - datetime.timedelta(weeks=WINDOW_WEEKS)
    sent = (
        Delivery.objects.filter(
            study_site__study_id__in=study_ids,
            kind=DeliveryKind.MESSAGE,
            channel=Channel.IN_APP,
            delivered_at__gte=week_since,
            delivered_at__lt=now,
            message__sender_organization__in=cros,
        )
        .values("message__sender_organization_id", "study_site_id")
        .annotate(messages=Count("message_id", distinct=True))
        .order_by()
    )
    sent_by_cro: dict[int, dict[int, int]] = {}
    for row in sent:
        sent_by_cro.setdefault(row["message__sender_organization_id"], {})[row["study_site_id"]] = (
            row["messages"]
        )
    feedback = survey_feedback_by_cro(study_ids=study_ids, cro_ids=[cro.id for cro in cros])
    study_by_id = {study.id: study for study in studies}
    studies_by_cro: dict[int, list[Study]] = {}
    engagements = Engagement.objects.filter(study_id__in=study_ids, cro__in=cros)
    for study_id, cro_id in engagements.values_list("study_id", "cro_id").order_by("study_id"):
        studies_by_cro.setdefault(cro_id, []).append(study_by_id[study_id])
    acknowledged = Delivery.objects.filter(
        kind=DeliveryKind.MESSAGE,
        channel=Channel.IN_APP,
        tier__in=ACK_TIERS,
        delivered_at__isnull=False,
        acknowledged_at__gte=now - datetime.timedelta(days=365),
        acknowledged_at__lt=now,
    )
    scores = []
    for cro in cros:
        sites = sites_by_cro.get(cro.id, set())
        changed = sum(1 for site_id in sites if len(cras_by_site[site_id]) > 1)
        activated = [milestones[s] for s in sites if milestones[s]["activated_on"]]
        ack = (
            acknowledged.filter(study_site_id__in=sites)
            .annotate(hours=Hours(F("acknowledged_at") - F("delivered_at")))
            .aggregate(median=Median("hours"), n=Count("id"))
            if sites
            else {"median": None, "n": 0}
        )
        messages = sum(sent_by_cro.get(cro.id, {}).get(site_id, 0) for site_id in sites)
        scores.append(
            CroScore(
                cro=cro,
                studies=studies_by_cro.get(cro.id, []),
                study_site_count=len(sites),
                cra_turnover=KpiValue(
                    round(changed / len(sites), 4) if sites else None, len(sites)
                ),
                messages_per_site_week=KpiValue(
                    round(messages / (len(sites) * WINDOW_WEEKS), 2) if sites else None,
                    len(sites),
                ),
                key_ack_hours=KpiValue(
                    round(ack["median"], 1) if ack["median"] is not None else None, ack["n"]
                ),
                activation_days=_median_value(
                    [
                        (m["activated_on"] - m["selected_on"]).days
                        for m in activated
                        if m["selected_on"]
                    ]
                ),  # fmt: skip
                first_patient_days=_median_value(
                    [
                        (m["first_patient_in_on"] - m["activated_on"]).days
                        for m in activated
                        if m["first_patient_in_on"]
                    ]
                ),  # fmt: skip
                feedback=feedback.get(cro.id, {}),
            )
        )
    return scores


def engaged_cros(studies: list[Study]) -> list[Organization]:
    """The CROs engaged on any of the studies, by name."""
    return list(
        Organization.objects.filter(engagements__study__in=studies).distinct().order_by("name")
    )


__all__ = ["WINDOW_WEEKS", "CroScore", "cro_scores", "engaged_cros"]
