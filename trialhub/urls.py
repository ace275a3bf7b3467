"""Root URLs: pages, Django admin, session log-in, and API v1 with its OpenAPI schema."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("trialhub.api.urls")),
    path("", include("trialhub.page_urls")),
    path("", include("comms.urls_stats")),
    path("sites/", include("sites.urls")),
    path("", include("comms.urls")),
    path("", include("comms.urls_compose")),
    path("", include("performance.urls")),
    path("", include("performance.urls_scorecards")),
    path("", include("performance.urls_surveys")),
    path("", include("performance.urls_practices")),
    path("", include("performance.urls_cro")),
]

if settings.DEBUG:
    urlpatterns.append(path("api-auth/", include("rest_framework.urls")))
