"""API v1 routes (mounted under /api/v1/ by ``trialhub.urls``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from comms.api import InboxViewSet, MessageViewSet
from comms.api_stats import StudyMessageLoadView
from comms.api_templates import MessageTemplateViewSet
from performance.api import MetricSnapshotListView
from performance.api_scorecards import CroScorecardView, SiteHistoryView, StudyScorecardView
from sites.api import StudySiteListView, StudySiteViewSet
from trialhub.api.coordination import (
    ActionItemDoneView,
    StudyMeetingsView,
    StudyStatusUpdatesView,
)
from trialhub.api.views import (
    MatrixHistoryView,
    MatrixView,
    MeView,
    RoleAssignmentViewSet,
    StudyViewSet,
    TokenObtainView,
    UserViewSet,
)

router = SimpleRouter()
router.register("studies", StudyViewSet, basename="api-study")
router.register("study-sites", StudySiteViewSet, basename="api-study-site")
router.register("role-assignments", RoleAssignmentViewSet, basename="api-role-assignment")
router.register("users", UserViewSet, basename="api-user")
router.register("messages", MessageViewSet, basename="api-message")
router.register("inbox", InboxViewSet, basename="api-inbox")
router.register("message-templates", MessageTemplateViewSet, basename="api-message-template")

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
    path("me/", MeView.as_view(), name="api-me"),
    path("studies/<int:study_id>/sites/", StudySiteListView.as_view(), name="api-study-sites"),
    path(
        "studies/<int:study_id>/responsibilities/",
        MatrixView.as_view(),
        name="api-study-responsibilities",
    ),
    path(
        "studies/<int:study_id>/responsibilities/history/",
        MatrixHistoryView.as_view(),
        name="api-study-responsibility-history",
    ),
    path(
        "studies/<int:study_id>/status-updates/",
        StudyStatusUpdatesView.as_view(),
        name="api-study-status-updates",
    ),
    path(
        "studies/<int:study_id>/meetings/",
        StudyMeetingsView.as_view(),
        name="api-study-meetings",
    ),
    path(
        "action-items/<int:item_id>/done/",
        ActionItemDoneView.as_view(),
        name="api-action-item-done",
    ),
    path(
        "studies/<int:study_id>/message-load/",
        StudyMessageLoadView.as_view(),
        name="api-study-message-load",
    ),
    # performance: metric snapshots (bulk upsert and list)
    path("metrics/", MetricSnapshotListView.as_view(), name="api-metrics"),
    # performance: scorecards
    path(
        "studies/<int:study_id>/scorecard/",
        StudyScorecardView.as_view(),
        name="api-study-scorecard",
    ),
    path(
        "studies/<int:study_id>/cro-scorecard/",
        CroScorecardView.as_view(),
        name="api-study-cro-scorecard",
    ),
    path("sites/<int:site_id>/history/", SiteHistoryView.as_view(), name="api-site-history"),
    *router.urls,
]
