from django.urls import path

from etcnet.lists import views

app_name = "lists"

urlpatterns = [
    path("", views.index, name="index"),
    path("publish/", views.publish, name="publish"),
    path("import/", views.import_view, name="import"),
    path("imports/<int:import_id>/", views.import_report, name="import_report"),
    path("versions/<str:number>/<str:kind>/", views.version_file, name="version_file"),
]
