"""Pages of the tenancy core (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from trialhub.views import assignments, coordination, dashboard, studies

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
    path(
        "studies/<int:study_id>/status-updates/",
        coordination.study_status_updates,
        name="study-status-updates",
    ),
    path("studies/<int:study_id>/meetings/", coordination.study_meetings, name="study-meetings"),
    path(
        "action-items/<int:item_id>/done/", coordination.action_item_done, name="action-item-done"
    ),
]
