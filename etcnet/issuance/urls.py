from django.urls import path

from etcnet.issuance import views

app_name = "issuance"

urlpatterns = [
    path("", views.application_list, name="list"),
    path("applications/new/", views.start, name="start"),
    path("applications/<int:application_id>/", views.detail, name="detail"),
    path("applications/<int:application_id>/phone/", views.phone, name="phone"),
    path("applications/<int:application_id>/customer/", views.customer, name="customer"),
    path("applications/<int:application_id>/id-photo/", views.id_photo, name="id_photo"),
    path("applications/<int:application_id>/vehicle/", views.vehicle, name="vehicle"),
    path(
        "applications/<int:application_id>/vehicle-photos/",
        views.vehicle_photos,
        name="vehicle_photos",
    ),
    path("applications/<int:application_id>/review/", views.review, name="review"),
    path("applications/<int:application_id>/submit/", views.submit, name="submit"),
    path(
        "applications/<int:application_id>/customer-change/",
        views.customer_change,
        name="customer_change",
    ),
    path(
        "applications/<int:application_id>/documents/<str:kind>/",
        views.document,
        name="document",
    ),
    path(
        "applications/<int:application_id>/documents/<str:kind>/thumbnail/",
        views.document_thumbnail,
        name="document_thumbnail",
    ),
    path(
        "applications/<int:application_id>/documents/<str:kind>/reveal/",
        views.document_reveal,
        name="document_reveal",
    ),
    path("customers/lookup/", views.customer_lookup, name="customer_lookup"),
]
