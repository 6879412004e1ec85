from django.urls import include, path

from etcnet.terminal.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login", views.login, name="login"),
    path("logout", views.logout, name="logout"),
    path("shift/start", views.start_shift, name="start_shift"),
    path("shift/end", views.end_shift, name="end_shift"),
    path("exit/<str:mode>", views.exit_flow, name="exit"),
    path("entry", views.entry_flow, name="entry"),
    path("sync", views.sync_now, name="sync"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("status.json", views.status_json, name="status_json"),
]
