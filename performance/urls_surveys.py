"""Performance pages: surveys (mounted at the root by ``trialhub.urls``)."""

urlpatterns: list = []
