"""Pages of communications (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from comms import views

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/<int:item_id>/", views.inbox_item, name="inbox-item"),
    path("inbox/<int:item_id>/row/", views.inbox_item_row, name="inbox-item-row"),
    path("inbox/<int:item_id>/acknowledge/", views.inbox_acknowledge, name="inbox-acknowledge"),
    path("approvals/", views.approvals, name="approvals"),
    path(
        "approvals/<int:message_id>/approve/",
        views.message_decide,
        {"decision": "approve"},
        name="message-approve",
    ),
    path(
        "approvals/<int:message_id>/reject/",
        views.message_decide,
        {"decision": "reject"},
        name="message-reject",
    ),
    path("messages/sent/", views.messages_sent, name="messages-sent"),
    path("messages/<int:message_id>/", views.message_detail, name="message-detail"),
    path(
        "messages/<int:message_id>/endorse/",
        views.message_endorse_view,
        name="message-endorse",
    ),
]
