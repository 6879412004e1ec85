from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import set_language

from etcnet.api import api
from etcnet.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("login/", core_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("issuance/", include("etcnet.issuance.urls")),
    path("cards/", include("etcnet.cards.urls")),
    path("network/", include("etcnet.network.urls")),
    path("tolling/", include("etcnet.tolling.urls")),
    path("lists/", include("etcnet.lists.urls")),
    path("plates/", include("etcnet.plates.urls")),
    path("clearing/", include("etcnet.clearing.urls")),
    path("exchange/", include("etcnet.exchange.urls")),
    path("clock/", include("etcnet.clock.urls")),
    path("captcha/", include("captcha.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
