from django.apps import AppConfig


class IssuanceConfig(AppConfig):
    name = "etcnet.issuance"
    label = "issuance"
    verbose_name = "ETC issuance"

    def ready(self) -> None:
        from etcnet.core.errors import register_param_kind
        from etcnet.issuance.models import DocumentKind

        register_param_kind("photo", "photo", lambda code: str(DocumentKind(code).label))
