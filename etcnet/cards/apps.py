from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "etcnet.cards"
    label = "cards"
    verbose_name = "Cards, OBUs and accounts"
