"""Pages of the tenancy core (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from trialhub.views import assignments, dashboard, studies

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("studies/", studies.study_list, name="study-list"),
    path("studies/<int:study_id>/", studies.study_detail, name="study-detail"),
    path("studies/<int:study_id>/matrix/", studies.study_matrix, name="study-matrix"),
    path(
        "studies/<int:study_id>/assignments/",
        assignments.study_assignments,
        name="study-assignments",
    ),
    path(
        "studies/<int:study_id>/assignments/<int:assignment_id>/end/",
        assignments.assignment_end,
        name="assignment-end",
    ),
    path("assignments/", assignments.managed_studies, name="managed-studies"),
]
