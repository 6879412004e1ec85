from django.apps import AppConfig


class ListsConfig(AppConfig):
    name = "etcnet.lists"
    label = "lists"
    verbose_name = "Status lists"
