from django.apps import AppConfig


class PlatesConfig(AppConfig):
    name = "etcnet.plates"
    label = "plates"
    verbose_name = "Plate pre-selection"
