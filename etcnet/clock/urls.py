from django.urls import path

from etcnet.clock import views

app_name = "clock"

urlpatterns = [
    path("", views.index, name="index"),
]
