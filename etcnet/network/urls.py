from django.urls import path

from etcnet.network import views

app_name = "network"

urlpatterns = [
    path("", views.index, name="index"),
    path("stations/<str:node_id>/", views.station, name="station"),
    path("stations/<str:node_id>/lanes/", views.lane_add, name="lane_add"),
    path("lanes/<int:lane_id>/toggle/", views.lane_toggle, name="lane_toggle"),
    path("import/", views.import_view, name="import"),
    path("imports/<int:import_id>/", views.import_report, name="import_report"),
    path("fee/", views.fee, name="fee"),
]
