from django.apps import AppConfig


class ClockConfig(AppConfig):
    name = "etcnet.clock"
    label = "clock"
    verbose_name = "Clock"
