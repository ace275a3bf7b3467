"""Performance pages: surveys (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from performance import views_surveys

urlpatterns = [
    path("studies/<int:study_id>/surveys/", views_surveys.study_surveys, name="study-surveys"),
    path("surveys/<int:survey_id>/", views_surveys.survey_detail, name="survey-detail"),
    path("surveys/<int:survey_id>/answer/", views_surveys.survey_answer, name="survey-answer"),
    path("surveys/<int:survey_id>/close/", views_surveys.survey_close_view, name="survey-close"),
]
