"""CRO scorecard pages (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from performance import views_cro

urlpatterns = [
    path(
        "studies/<int:study_id>/cro-scorecard/",
        views_cro.study_cro_scorecard,
        name="study-cro-scorecard",
    ),
    path("cro-track-record/", views_cro.cro_track_record, name="cro-track-record"),
]
