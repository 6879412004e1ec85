from django.urls import path

from etcnet.plates import views

app_name = "plates"

urlpatterns = [
    path("", views.index, name="index"),
    path("announcements/", views.announcements, name="announcements"),
    path("announcements/<int:pool_id>/", views.announcement, name="announcement"),
    path("register/", views.register, name="register"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("account/", views.account, name="account"),
    path("select/", views.select, name="select"),
    path("select/notice/", views.notice, name="notice"),
    path("select/vin/", views.vin, name="vin"),
    path("select/contact/", views.contact, name="contact"),
    path("select/choose/", views.choose, name="choose"),
    path("select/compose/", views.compose, name="compose"),
    path("select/keys/", views.keys, name="keys"),
    path("select/verify/", views.verify, name="verify"),
    path("select/submit/", views.submit, name="submit"),
    path("select/random/", views.random_pick, name="random"),
    path("select/sms/", views.sms, name="sms"),
    path("selections/<str:number>/", views.done, name="done"),
    path("selections/<str:number>/form.pdf", views.form_pdf, name="form_pdf"),
    path("office/", views.office, name="office"),
    path("office/window/", views.window, name="window"),
    path("manage/", views.manage, name="manage"),
]
