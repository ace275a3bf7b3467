"""Compose and message-template pages (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from comms import views_compose, views_templates

urlpatterns = [
    path("messages/new/", views_compose.compose, name="message-compose"),
    path("messages/preview/", views_compose.compose_preview_panel, name="message-preview"),
    path("messages/templates/", views_templates.templates_index, name="message-templates"),
    path(
        "studies/<int:study_id>/templates/",
        views_templates.study_templates,
        name="study-templates",
    ),
    path(
        "studies/<int:study_id>/templates/<int:template_id>/edit/",
        views_templates.template_edit,
        name="template-edit",
    ),
    path(
        "studies/<int:study_id>/templates/<int:template_id>/approve/",
        views_templates.template_approve,
        name="template-approve",
    ),
    path(
        "studies/<int:study_id>/templates/<int:template_id>/retire/",
        views_templates.template_retire,
        name="template-retire",
    ),
    path(
        "studies/<int:study_id>/comms-policy/",
        views_templates.comms_policy,
        name="study-comms-policy",
    ),
    path(
        "studies/<int:study_id>/endorsements/<int:message_id>/",
        views_templates.endorsement_give,
        name="study-endorse",
    ),
]
