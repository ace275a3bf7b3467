"""CRO scorecard pages (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from performance import views_cro

urlpatterns = [
    path(
        "studies/<int:study_id>/cro-scorecard/",
        views_cro.study_cro_scorecard,
        name="study-cro-scorecard",
    ),
    path(
        "studies/<int:study_id>/cro-scorecard.csv",
        views_cro.study_cro_scorecard_csv,
        name="study-cro-scorecard-csv",
    ),
    path("cro-track-record/", views_cro.cro_track_record, name="cro-track-record"),
    path("cro-track-record.csv", views_cro.cro_track_record_csv, name="cro-track-record-csv"),
]
