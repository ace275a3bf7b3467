from django.apps import AppConfig


class TrialhubConfig(AppConfig):
    name = "trialhub"
    verbose_name = "Studies and tenancy"
