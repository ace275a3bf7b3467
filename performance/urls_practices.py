"""Performance pages: practices (mounted at the root by ``trialhub.urls``)."""

urlpatterns: list = []
