"""Performance pages (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from performance import views

urlpatterns = [
    path("studies/<int:study_id>/metrics/upload/", views.metrics_upload, name="metrics-upload"),
    path(
        "studies/<int:study_id>/metrics/template.csv",
        views.metrics_template,
        name="metrics-template",
    ),
]
