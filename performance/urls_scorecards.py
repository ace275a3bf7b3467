"""Performance pages: scorecards (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from performance import views_scorecards as views
from performance import views_site_scorecards as site_views

urlpatterns = [
    path("studies/<int:study_id>/scorecard/", views.study_scorecard_page, name="study-scorecard"),
    path(
        "studies/<int:study_id>/scorecard.csv",
        views.study_scorecard_csv,
        name="study-scorecard-csv",
    ),
    path(
        "studies/<int:study_id>/scorecard/settings/",
        views.study_scorecard_settings,
        name="study-scorecard-settings",
    ),
    path(
        "studies/<int:study_id>/scorecard/recognitions/award/",
        views.study_recognitions_award,
        name="study-recognitions-award",
    ),
    path(
        "studies/<int:study_id>/scorecard/recognitions/announce/",
        views.study_recognitions_announce,
        name="study-recognitions-announce",
    ),
    path(
        "study-sites/<int:study_site_id>/scorecard/",
        site_views.study_site_scorecard,
        name="study-site-scorecard",
    ),
    path(
        "study-sites/<int:study_site_id>/scorecard.csv",
        site_views.study_site_scorecard_csv,
        name="study-site-scorecard-csv",
    ),
    path("my-site/scorecards/", site_views.site_scorecards, name="site-scorecards"),
    path("sites/<int:site_id>/scorecards/", site_views.site_history, name="site-history"),
]
