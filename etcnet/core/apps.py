from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "etcnet.core"
    label = "core"
    verbose_name = "etcnet core"

    def ready(self) -> None:
        from etcnet.core import lookups

        lookups.register()
