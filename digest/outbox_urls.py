from django.urls import path

from . import views

urlpatterns = [
    path("", views.outbox_list, name="outbox"),
    path("<int:pk>/", views.outbox_detail, name="outbox_detail"),
    path("<int:pk>/html/", views.outbox_html, name="outbox_html"),
]
