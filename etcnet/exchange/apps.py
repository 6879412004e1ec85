from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "etcnet.exchange"
    label = "exchange"
    verbose_name = "Exchange with the national center and the banks"
