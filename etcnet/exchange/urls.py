from django.urls import path

from etcnet.exchange import views, views_banks

app_name = "exchange"

urlpatterns = [
    path("", views.index, name="index"),
    path("send-now/", views.send_now, name="send_now"),
    path("statements/<slug:kind>.zip", views.statement, name="statement"),
    path("banks/", views_banks.index, name="banks"),
    path("banks/chase/", views_banks.chase, name="banks_chase"),
]
