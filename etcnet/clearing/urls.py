from django.urls import path

from etcnet.clearing import views

app_name = "clearing"

urlpatterns = [
    path("", views.days, name="days"),
    path("days/<str:date>/", views.day, name="day"),
    path("reports/", views.report, name="report"),
    path("payments/", views.payments, name="payments"),
    path("transactions/", views.transactions, name="transactions"),
    path("disputes/", views.disputes, name="disputes"),
    path("statements/", views.statement_list, name="statements"),
    path("statements/<slug:kind>.<slug:fmt>", views.statement, name="statement"),
]
