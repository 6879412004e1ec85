from django.apps import AppConfig


class ClearingConfig(AppConfig):
    name = "etcnet.clearing"
    label = "clearing"
    verbose_name = "Clearing and settlement"
