"""Performance pages: scorecards (mounted at the root by ``trialhub.urls``)."""

urlpatterns: list = []
