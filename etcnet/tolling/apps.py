from django.apps import AppConfig


class TollingConfig(AppConfig):
    name = "etcnet.tolling"
    label = "tolling"
    verbose_name = "Tolling: terminals and received transactions"
