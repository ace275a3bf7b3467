"""Site pages (mounted under /sites/ by ``trialhub.urls``)."""

from django.urls import path

from sites import views

urlpatterns = [
    path("mine/", views.own_site, name="own-site"),
    path("<int:site_id>/", views.site_profile, name="site-profile"),
    path("<int:site_id>/preferences/", views.site_preferences, name="site-preferences"),
    path("<int:site_id>/training/", views.training_record_add, name="site-training-add"),
    path("study-sites/<int:study_site_id>/edit/", views.study_site_edit, name="study-site-edit"),
]
