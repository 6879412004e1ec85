from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "etcnet.demo"
    label = "demo"
    verbose_name = "Demo data"
