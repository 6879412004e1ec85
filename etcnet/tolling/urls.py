from django.urls import path

from etcnet.tolling import views

app_name = "tolling"

urlpatterns = [
    path("", views.transactions, name="transactions"),
    path("<int:transaction_id>/", views.transaction, name="transaction"),
    path("<int:transaction_id>/photo", views.photo, name="photo"),
]
