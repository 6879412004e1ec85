from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "etcnet.network"
    label = "network"
    verbose_name = "Road network and tariffs"
