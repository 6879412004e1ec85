from django.urls import path

from etcnet.cards import views

app_name = "cards"

urlpatterns = [
    path("", views.search, name="search"),
    path("inventory/", views.inventory, name="inventory"),
    path("issue/<int:application_id>/", views.issue, name="issue"),
    path("bindings/<int:binding_id>/", views.binding, name="binding"),
    path("cards/<str:card_no>/", views.card, name="card"),
    path("cards/<str:card_no>/top-up/", views.top_up, name="top_up"),
    path("cards/<str:card_no>/loss/", views.report_loss, name="report_loss"),
    path("cards/<str:card_no>/loss/cancel/", views.cancel_loss, name="cancel_loss"),
    path("cards/<str:card_no>/replace/", views.replace, name="replace"),
    path("cards/<str:card_no>/cancel/", views.cancel, name="cancel"),
    path("cards/<str:card_no>/renewal/", views.renew, name="renew"),
    path("cards/<str:card_no>/resume/", views.resume, name="resume"),
    path(
        "cards/<str:card_no>/top-ups/<int:top_up_id>/retry/",
        views.retry_top_up,
        name="retry_top_up",
    ),
    path(
        "cards/<str:card_no>/top-ups/<int:top_up_id>/refund/",
        views.refund_top_up,
        name="refund_top_up",
    ),
    path("cards/<str:card_no>/suspension/", views.suspend, name="suspend"),
    path("obus/<str:contract_no>/loss/", views.obu_loss, name="obu_loss"),
    path("obus/<str:contract_no>/replace/", views.replace_obu, name="replace_obu"),
    path("accounts/<str:number>/", views.account, name="account"),
    path("accounts/<str:number>/bank/", views.link_bank, name="link_bank"),
    path("inventory/move/", views.move, name="move"),
    path("list-events/", views.list_events, name="list_events"),
]
