from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "etcnet.core"
    label = "core"
    verbose_name = "etcnet core"
