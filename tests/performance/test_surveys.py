"""Site feedback surveys: opening and closing, answering once, CRO attribution, anonymous
aggregates (n, means, distributions, comments), the n < 3 rule, pages and their tenancy."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from performance.models import Survey, SurveyResponse
from performance.selectors.surveys import (
    survey_feedback_by_cro,
    survey_results,
    surveys_for_user,
    surveys_to_answer_for_user,
)
from performance.services.surveys import survey_close, survey_open, survey_response_submit
from sites.services import study_site_create
from tests.factories import member, site_org
from trialhub.models import StudyRole
from trialhub.services import role_assignment_create
from trialhub.services.roles import role_assignment_end

pytestmark = pytest.mark.django_db

SITE_NAMES = ("Site One", "Site Two", "Site Three")


def open_survey(world, study=None, *, actor=None, title="Q3 site feedback", **kwargs) -> Survey:
    return survey_open(
        study=study or world.study_a, actor=actor or world.sponsor_lead_a, title=title, **kwargs
    )


def answer(survey, actor, scores=(4, 4, 4), comment="", now=None) -> SurveyResponse:
    clarity, support, responsiveness = scores
    return survey_response_submit(
        survey=survey,
        actor=actor,
        communication_clarity=clarity,
        support=support,
        cra_responsiveness=responsiveness,
        comment=comment,
        now=now,
    )


@pytest.fixture
def site_admins(world):
    """Organisation admins of sites 1 and 2 (they answer for their site without a role)."""
    return member(world.site_org_1, "site_1_admin", admin=True), member(
        world.site_org_2, "site_2_admin", admin=True
    )


@pytest.fixture
def answered(world, site_admins):
    """A survey on study A with four answers: three from site 1 (monitored by the shared
    CRO's CRA) and one from site 2 (no CRA: no CRO)."""
    survey = open_survey(world)
    answer(survey, world.site_coord_1, (5, 3, 1), "Clear newsletters")
    answer(survey, world.pi_1, (4, 3, 2), "")
    answer(survey, site_admins[0], (4, 3, 5), "Answers come fast")
    answer(survey, world.site_coord_2, (2, 3, 5), "Too many reminders at Site Two")
    return survey


# --- services: opening and closing -------------------------------------------------------------


def test_sponsor_lead_cro_pm_and_org_admins_open_surveys(world):
    cro_admin = member(world.cro, "cro_admin", admin=True)
    for actor in (world.sponsor_lead_a, world.cro_pm, world.sponsor_a_admin, cro_admin):
        survey = open_survey(world, actor=actor, title=f"By {actor.username}")
        assert survey.opened_by == actor
        assert survey.opened_by_organization == actor.membership.organization
        assert survey.closed_at is None


@pytest.mark.parametrize(
    "persona", ["sponsor_viewer_a", "cra", "site_coord_1", "sponsor_lead_b", "cro_b_pm"]
)
def test_viewers_cras_site_people_and_other_tenants_may_not_open_surveys(world, persona):
    with pytest.raises(PermissionDenied):
        open_survey(world, actor=getattr(world, persona))
    assert not Survey.objects.exists()


def test_open_needs_a_title_and_a_last_day_not_in_the_past(world):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    with pytest.raises(ValidationError) as error:
        open_survey(world, title="   ", closes_on=yesterday)
    assert set(error.value.message_dict) == {"title", "closes_on"}
    survey = open_survey(world, closes_on=timezone.localdate())
    assert survey.closes_on == timezone.localdate(), "today is a valid last day"


def test_close_is_for_managers_and_closing_twice_is_an_error(world):
    survey = open_survey(world)
    with pytest.raises(PermissionDenied):
        survey_close(survey=survey, actor=world.sponsor_viewer_a)
    now = timezone.now()
    closed = survey_close(survey=survey, actor=world.cro_pm, now=now)
    assert closed.closed_at == now
    with pytest.raises(ValidationError) as error:
        survey_close(survey=survey, actor=world.sponsor_lead_a)
    assert "survey" in error.value.message_dict


# --- services: answering ------------------------------------------------------------------------


def test_site_staff_answer_at_their_study_site_attributed_to_the_monitoring_cro(world, site_admins):
    survey = open_survey(world)
    coordinator = answer(survey, world.site_coord_1, (5, 4, 3), "  Fine  ")
    investigator = answer(survey, world.pi_1)
    admin_2 = answer(survey, site_admins[1])

    assert (coordinator.study_site, coordinator.cro, coordinator.comment) == (
        world.ss_a1,
        world.cro,
        "Fine",
    )
    assert (investigator.study_site, investigator.cro) == (world.ss_a1, world.cro)
    assert (admin_2.study_site, admin_2.cro) == (world.ss_a2, None), "site 2 has no CRA"


def test_cro_is_the_latest_started_cra_active_on_the_day(world):
    today = timezone.localdate()
    cro_b_cra = member(world.cro_b, "cra_b")
    assign = role_assignment_create
    assign(
        actor=world.sponsor_b_admin,
        user=cro_b_cra,
        role=StudyRole.CRA,
        study_site=world.ss_b3,
        start_date=today - datetime.timedelta(days=30),
    )
    later = assign(
        actor=world.sponsor_b_admin,
        user=world.cra_2,
        role=StudyRole.CRA,
        study_site=world.ss_b3,
        start_date=today - datetime.timedelta(days=10),
    )
    survey = open_survey(world, world.study_b, actor=world.sponsor_lead_b)
    assert answer(survey, world.site_coord_3).cro == world.cro, "the later start wins"

    role_assignment_end(assignment=later, actor=world.sponsor_b_admin, reason="Left", on=today)
    site_3_admin = member(world.site_org_3, "site_3_admin", admin=True)
    assert answer(survey, site_3_admin).cro == world.cro_b, "an ended CRA no longer counts"


@pytest.mark.parametrize("persona", ["sponsor_lead_a", "cro_pm", "cra", "site_coord_3"])
def test_only_the_studys_site_staff_answer(world, persona):
    survey = open_survey(world)
    with pytest.raises(PermissionDenied):
        answer(survey, getattr(world, persona))
    assert not SurveyResponse.objects.exists()


def test_a_closed_or_expired_survey_takes_no_answer(world):
    closed = open_survey(world, title="Closed")
    survey_close(survey=closed, actor=world.sponsor_lead_a)
    expiring = open_survey(world, title="Expiring", closes_on=timezone.localdate())

    with pytest.raises(ValidationError) as error:
        answer(closed, world.site_coord_1)
    assert "survey" in error.value.message_dict
    with pytest.raises(ValidationError):
        answer(expiring, world.site_coord_1, now=timezone.now() + datetime.timedelta(days=2))
    assert answer(expiring, world.site_coord_1).survey == expiring, "its last day still counts"


def test_a_second_answer_by_the_same_person_is_a_clear_error(world):
    survey = open_survey(world)
    answer(survey, world.site_coord_1)
    with pytest.raises(ValidationError) as error:
        answer(survey, world.site_coord_1, (1, 1, 1))
    assert error.value.message_dict == {"respondent": ["You have already answered this survey."]}
    assert SurveyResponse.objects.get().communication_clarity == 4


@pytest.mark.parametrize("bad", [0, 6, "x", True, None, 2.5])
def test_scores_are_whole_numbers_from_1_to_5(world, bad):
    survey = open_survey(world)
    with pytest.raises(ValidationError) as error:
        answer(survey, world.site_coord_1, (bad, 3, 3))
    assert set(error.value.message_dict) == {"communication_clarity"}


# --- selectors -----------------------------------------------------------------------------------


def test_results_for_the_sponsor_are_hand_computed_over_every_answer(world, answered):
    results = survey_results(survey=answered, viewer=world.sponsor_lead_a)

    assert (results["n"], results["hidden"], results["note"]) == (4, False, "")
    by_field = {question["field"]: question for question in results["questions"]}
    # clarity 5, 4, 4, 2 -> 15 / 4 = 3.75 -> 3.8; support all 3; responsiveness 1+2+5+5 = 13/4
    assert by_field["communication_clarity"]["mean"] == Decimal("3.8")
    assert by_field["support"]["mean"] == Decimal("3.0")
    assert by_field["cra_responsiveness"]["mean"] == Decimal("3.3")
    assert [bar["count"] for bar in by_field["communication_clarity"]["distribution"]] == [
        0,
        1,
        0,
        2,
        1,
    ]
    assert [bar["percent"] for bar in by_field["communication_clarity"]["distribution"]] == [
        0,
        25,
        0,
        50,
        25,
    ]
    assert results["comments"] == [
        "Answers come fast",
        "Clear newsletters",
        "Too many reminders at Site Two",
    ], "bare text, alphabetical, no empty comment"


def test_a_cro_sees_only_the_answers_attributed_to_it(world, answered):
    results = survey_results(survey=answered, viewer=world.cro_pm)

    assert results["n"] == 3
    by_field = {question["field"]: question["mean"] for question in results["questions"]}
    # site 1's three answers: clarity 5, 4, 4 = 13/3; support 3; responsiveness 1+2+5 = 8/3
    assert by_field == {
        "communication_clarity": Decimal("4.3"),
        "support": Decimal("3.0"),
        "cra_responsiveness": Decimal("2.7"),
    }
    assert results["comments"] == ["Answers come fast", "Clear newsletters"]
    assert survey_results(survey=answered, viewer=world.cro_b_pm)["n"] == 0


def test_fewer_than_three_answers_hide_means_distributions_and_comments(world):
    survey = open_survey(world)
    answer(survey, world.site_coord_1, (5, 5, 5), "Only me")
    answer(survey, world.site_coord_2, (1, 1, 1), "And me")

    results = survey_results(survey=survey, viewer=world.sponsor_lead_a)

    assert results["n"] == 2 and results["hidden"] is True
    assert results["note"] == "Fewer than 3 answers: hidden to keep them anonymous."
    assert all(q["mean"] is None and q["distribution"] == [] for q in results["questions"])
    assert results["comments"] == []


def test_results_take_a_constant_number_of_queries(world, answered, django_assert_num_queries):
    world.cro_pm._trialhub_membership = world.cro_pm.membership
    with django_assert_num_queries(2):
        survey_results(survey=answered, viewer=world.cro_pm)


def test_surveys_in_reach_and_out_of_it(world):
    survey_a = open_survey(world)
    survey_b = open_survey(world, world.study_b, actor=world.sponsor_lead_b)

    def ids(user):
        return set(surveys_for_user(user).values_list("id", flat=True))

    assert ids(world.sponsor_lead_a) == {survey_a.id}
    assert ids(world.sponsor_lead_b) == {survey_b.id}
    assert ids(world.cro_pm) == {survey_a.id, survey_b.id}
    assert ids(world.cro_b_pm) == {survey_b.id}
    assert ids(world.site_coord_1) == {survey_a.id, survey_b.id}
    assert ids(world.site_coord_2) == {survey_a.id}
    assert ids(world.site_coord_3) == {survey_b.id}
    assert ids(world.no_org_user) == set()
    assert set(
        surveys_for_user(world.cro_pm, study_id=world.study_b.id).values_list("id", flat=True)
    ) == {survey_b.id}


def test_surveys_to_answer_are_the_open_unanswered_ones_at_the_users_study_sites(world):
    today = timezone.localdate()
    open_a = open_survey(world, title="Open A", closes_on=today + datetime.timedelta(days=5))
    open_b = open_survey(world, world.study_b, actor=world.sponsor_lead_b, title="Open B")
    answered_a = open_survey(world, title="Answered A")
    answer(answered_a, world.site_coord_1)
    survey_close(survey=open_survey(world, title="Closed A"), actor=world.sponsor_lead_a)
    now = timezone.now()

    assert surveys_to_answer_for_user(world.site_coord_1, now=now) == [open_a, open_b]
    assert surveys_to_answer_for_user(world.site_coord_2, now=now) == [open_a, answered_a]
    assert surveys_to_answer_for_user(world.sponsor_lead_a, now=now) == []
    later = now + datetime.timedelta(days=6)
    assert surveys_to_answer_for_user(world.site_coord_1, now=later) == [open_b]


def test_feedback_by_cro_is_one_aggregate_over_the_studies(
    world, answered, django_assert_num_queries
):
    cro_b_cra = member(world.cro_b, "cra_b")
    role_assignment_create(
        actor=world.sponsor_b_admin, user=cro_b_cra, role=StudyRole.CRA, study_site=world.ss_b3
    )
    survey_b = open_survey(world, world.study_b, actor=world.sponsor_lead_b)
    answer(survey_b, world.site_coord_1, (1, 1, 1))  # ss_b1: the shared CRO's CRA
    answer(survey_b, world.site_coord_3, (5, 4, 2))  # ss_b3: the B-only CRO's CRA

    with django_assert_num_queries(1):
        feedback = survey_feedback_by_cro(study_ids=[world.study_a.id, world.study_b.id])

    # shared CRO: clarity 5, 4, 4, 1 = 14/4 = 3.5; support 3, 3, 3, 1 = 2.5; resp 1+2+5+1 = 2.3
    assert feedback[world.cro.id] == {
        "n": 4,
        "means": {
            "communication_clarity": Decimal("3.5"),
            "support": Decimal("2.5"),
            "cra_responsiveness": Decimal("2.3"),
        },
        "hidden": False,
    }
    assert feedback[world.cro_b.id]["n"] == 1 and feedback[world.cro_b.id]["hidden"]
    assert set(feedback) == {world.cro.id, world.cro_b.id}, "no CRO: not counted"
    only_b = survey_feedback_by_cro(study_ids=[world.study_b.id], cro_ids=[world.cro.id])
    assert only_b[world.cro.id]["n"] == 1 and set(only_b) == {world.cro.id}


# --- pages ---------------------------------------------------------------------------------------


def test_study_surveys_page_lists_and_opens_surveys(world, answered, client_as):
    client = client_as(world.sponsor_lead_a)
    page = client.get(f"/studies/{world.study_a.id}/surveys/")
    assert page.status_code == 200
    assert page.context["can_open"] is True
    assert "Q3 site feedback" in page.content.decode()
    assert list(page.context["surveys"])[0].answer_count == 4

    created = client.post(
        f"/studies/{world.study_a.id}/surveys/", {"title": "Q4 feedback", "closes_on": ""}
    )
    survey = Survey.objects.get(title="Q4 feedback")
    assert created.status_code == 302 and created["Location"] == f"/surveys/{survey.id}/"

    invalid = client.post(f"/studies/{world.study_a.id}/surveys/", {"title": ""})
    assert invalid.status_code == 400
    assert "This field is required." in invalid.content.decode()
    past = client.post(
        f"/studies/{world.study_a.id}/surveys/", {"title": "Late", "closes_on": "2000-01-01"}
    )
    assert past.status_code == 400
    assert "cannot be in the past" in past.content.decode()


def test_study_surveys_page_empty_state_and_no_form_for_viewers(world, client_as):
    client = client_as(world.sponsor_viewer_a)
    page = client.get(f"/studies/{world.study_a.id}/surveys/")
    assert page.status_code == 200
    assert "No surveys yet" in page.content.decode()
    assert "Open a survey" not in page.content.decode()
    assert client.post(f"/studies/{world.study_a.id}/surveys/", {"title": "X"}).status_code == 403


def test_cro_page_never_names_a_site_or_a_respondent(world, answered, client_as):
    page = client_as(world.cro_pm).get(f"/surveys/{answered.id}/")
    html = page.content.decode()

    assert page.status_code == 200
    assert page.context["results"]["n"] == 3
    assert "Clear newsletters" in html and "Answers come fast" in html
    assert "Too many reminders" not in html, "site 2's answer is not attributed to this CRO"
    respondents = [world.site_coord_1, world.pi_1, world.site_coord_2]
    for text in (*SITE_NAMES, *(p.username for p in respondents)):
        assert text not in html, f"{text!r} must not appear on the CRO's results"
    for person in respondents:
        assert person.get_full_name() not in html
    assert set(page.context["results"]) == {"n", "hidden", "note", "questions", "comments"}


def test_sponsor_page_shows_every_answer_without_sites_and_a_close_button(
    world, answered, client_as
):
    page = client_as(world.sponsor_lead_a).get(f"/surveys/{answered.id}/")
    html = page.content.decode()
    assert page.context["results"]["n"] == 4 and page.context["can_close"] is True
    assert 'style="width: 50%"' in html, "the distribution bars carry their widths"
    assert "Site One" not in html and "coord_1" not in html
    assert (
        client_as(world.sponsor_viewer_a).get(f"/surveys/{answered.id}/").context["can_close"]
        is False
    )


def test_detail_with_fewer_than_three_answers_shows_the_note(world, client_as):
    survey = open_survey(world)
    answer(survey, world.site_coord_1, comment="Secret words")
    html = client_as(world.sponsor_lead_a).get(f"/surveys/{survey.id}/").content.decode()
    assert "Fewer than 3 answers: hidden to keep them anonymous." in html
    assert "Secret words" not in html


def test_close_button_closes_and_403_for_viewers(world, client_as):
    survey = open_survey(world)
    assert client_as(world.sponsor_viewer_a).post(f"/surveys/{survey.id}/close/").status_code == 403
    response = client_as(world.cro_pm).post(f"/surveys/{survey.id}/close/", follow=True)
    survey.refresh_from_db()
    assert survey.closed_at is not None
    assert "Survey closed" in response.content.decode()
    again = client_as(world.cro_pm).post(f"/surveys/{survey.id}/close/", follow=True)
    assert "already closed" in again.content.decode()


def test_site_person_answers_from_the_form_and_goes_back_to_the_dashboard(world, client_as):
    survey = open_survey(world)
    client = client_as(world.site_coord_1)
    detail = client.get(f"/surveys/{survey.id}/")
    assert detail.context["can_answer"] is True and "results" not in detail.context

    form = client.get(f"/surveys/{survey.id}/answer/")
    html = form.content.decode()
    assert form.status_code == 200
    assert html.count("<fieldset") == 3 and "<legend>Communication clarity" in html
    assert html.count('type="radio"') == 15

    invalid = client.post(f"/surveys/{survey.id}/answer/", {"support": "3"})
    assert invalid.status_code == 400
    assert "Choose a score from 1 to 5." in invalid.content.decode()

    sent = client.post(
        f"/surveys/{survey.id}/answer/",
        {"communication_clarity": "5", "support": "4", "cra_responsiveness": "3", "comment": "Ok"},
        follow=True,
    )
    assert sent.redirect_chain[-1][0] == "/"
    assert "your answer to “Q3 site feedback” is in" in sent.content.decode()
    response = SurveyResponse.objects.get()
    assert (response.respondent, response.study_site, response.cro) == (
        world.site_coord_1,
        world.ss_a1,
        world.cro,
    )
    again = client.get(f"/surveys/{survey.id}/answer/")
    assert again.status_code == 302 and again["Location"] == f"/surveys/{survey.id}/"
    own = client.get(f"/surveys/{survey.id}/")
    assert own.context["own_answer"] == response and "5 / 5" in own.content.decode()


def test_answering_a_closed_survey_redirects_and_a_late_post_is_refused(world, client_as):
    survey = open_survey(world)
    client = client_as(world.site_coord_1)
    survey_close(survey=survey, actor=world.sponsor_lead_a)
    assert client.get(f"/surveys/{survey.id}/answer/")["Location"] == f"/surveys/{survey.id}/"
    late = client.post(
        f"/surveys/{survey.id}/answer/",
        {"communication_clarity": "5", "support": "4", "cra_responsiveness": "3"},
    )
    assert late.status_code == 400 and "This survey is closed." in late.content.decode()


@pytest.mark.parametrize("persona", ["sponsor_lead_a", "cro_pm", "cra"])
def test_sponsor_and_cro_people_may_not_answer(world, client_as, persona):
    survey = open_survey(world)
    response = client_as(getattr(world, persona)).get(f"/surveys/{survey.id}/answer/")
    assert response.status_code == 403


def _urls(world, survey) -> list[tuple[str, str]]:
    return [
        ("get", f"/studies/{world.study_a.id}/surveys/"),
        ("post", f"/studies/{world.study_a.id}/surveys/"),
        ("get", f"/surveys/{survey.id}/"),
        ("get", f"/surveys/{survey.id}/answer/"),
        ("post", f"/surveys/{survey.id}/answer/"),
        ("post", f"/surveys/{survey.id}/close/"),
    ]


@pytest.mark.parametrize("persona", ["sponsor_lead_b", "cro_b_pm", "site_coord_3", "no_org_user"])
def test_every_survey_page_is_not_found_outside_the_tenancy(world, client_as, persona):
    survey = open_survey(world)
    client = client_as(getattr(world, persona))
    for method, url in _urls(world, survey):
        response = getattr(client, method)(url, {"title": "x"} if method == "post" else None)
        assert response.status_code == 404, f"{persona} {method} {url}: {response.status_code}"


def test_every_survey_page_sends_anonymous_visitors_to_log_in(world, client_as):
    survey = open_survey(world)
    client = client_as(None)
    for method, url in _urls(world, survey):
        response = getattr(client, method)(url)
        assert response.status_code == 302, f"{method} {url}"
        assert response["Location"].startswith("/accounts/login/"), f"{method} {url}"
    assert not Survey.objects.filter(closed_at__isnull=False).exists()


def _fill(world, count: int) -> Survey:
    """``count`` surveys on study A, the last one answered by site 1's three people."""
    site_1_admin = member(world.site_org_1, f"site_1_admin_{count}", admin=True)
    surveys = [open_survey(world, title=f"Survey {index}") for index in range(count)]
    for person in (world.site_coord_1, world.pi_1, site_1_admin):
        answer(surveys[-1], person, (3, 4, 5), f"comment by someone {count}")
    return surveys[-1]


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("persona", ["sponsor_lead_a", "cro_pm", "site_coord_1"])
def test_list_and_detail_pages_take_a_constant_number_of_queries(
    world, client_as, persona, django_assert_max_num_queries
):
    client = client_as(getattr(world, persona))
    list_url = f"/studies/{world.study_a.id}/surveys/"
    small = _fill(world, 2)
    small_counts = (_queries(client, list_url), _queries(client, f"/surveys/{small.id}/"))

    large = _fill(world, 20)
    with django_assert_max_num_queries(small_counts[0]):
        client.get(list_url)
    with django_assert_max_num_queries(small_counts[1]):
        client.get(f"/surveys/{large.id}/")
    assert max(small_counts) <= 16, small_counts


def test_site_surveys_card_lists_what_waits_and_renders_nothing_otherwise(world):
    survey = open_survey(world, title="Tell us")
    template = Template("{% load survey_tags %}{% site_surveys_card %}")

    html = template.render(Context({"user": world.site_coord_1}))
    assert "Surveys waiting for your answer" in html
    assert f'href="/surveys/{survey.id}/answer/"' in html
    assert template.render(Context({"user": world.sponsor_lead_a})).strip() == ""
    answer(survey, world.site_coord_1)
    world.site_coord_1 = type(world.site_coord_1).objects.get(pk=world.site_coord_1.pk)
    assert template.render(Context({"user": world.site_coord_1})).strip() == ""


def test_new_site_on_the_study_sees_only_surveys_of_its_studies(world):
    """A site added to study B later answers study B's surveys, never study A's."""
    organization, site = site_org("Site Four", "IT", "Europe/Rome")
    study_site = study_site_create(study=world.study_b, site=site, enrolment_target=5)
    coordinator = member(organization, "coord_4")
    role_assignment_create(
        actor=world.sponsor_b_admin,
        user=coordinator,
        role=StudyRole.SITE_COORDINATOR,
        study_site=study_site,
    )
    open_survey(world)
    survey_b = open_survey(world, world.study_b, actor=world.sponsor_lead_b)
    assert surveys_to_answer_for_user(coordinator, now=timezone.now()) == [survey_b]
    assert answer(survey_b, coordinator).study_site == study_site
