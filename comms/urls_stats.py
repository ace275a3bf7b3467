"""Message-load pages (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from comms import views_stats

urlpatterns = [
    path(
        "studies/<int:study_id>/message-load/",
        views_stats.message_load,
        name="study-message-load",
    ),
]
