"""Performance pages: practices (mounted at the root by ``trialhub.urls``)."""

from django.urls import path

from performance import views_practices

urlpatterns = [
    path("practices/", views_practices.practice_list, name="practice-list"),
    path("practices/new/", views_practices.practice_create, name="practice-create"),
    path("practices/<int:note_id>/", views_practices.practice_detail, name="practice-detail"),
    path(
        "practices/<int:note_id>/publish/",
        views_practices.practice_publish,
        name="practice-publish",
    ),
    path(
        "practices/<int:note_id>/withdraw/",
        views_practices.practice_withdraw,
        name="practice-withdraw",
    ),
]
