from django.urls import path

from etcnet.exchange import views

app_name = "exchange"

urlpatterns = [
    path("", views.index, name="index"),
    path("send-now/", views.send_now, name="send_now"),
]
