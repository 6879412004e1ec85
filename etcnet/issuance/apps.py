from django.apps import AppConfig


class IssuanceConfig(AppConfig):
    name = "etcnet.issuance"
    label = "issuance"
    verbose_name = "ETC issuance"
