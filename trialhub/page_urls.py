"""Pages of the tenancy core (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from trialhub import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("studies/", views.study_list, name="study-list"),
    path("studies/<int:study_id>/", views.study_detail, name="study-detail"),
    path("studies/<int:study_id>/matrix/", views.study_matrix, name="study-matrix"),
    path("studies/<int:study_id>/assignments/", views.study_assignments, name="study-assignments"),
    path(
        "studies/<int:study_id>/assignments/<int:assignment_id>/end/",
        views.assignment_end,
        name="assignment-end",
    ),
    path("assignments/", views.managed_studies, name="managed-studies"),
]
