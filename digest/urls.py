from django.urls import path

from . import views

urlpatterns = [
    path("manage/<str:key>/digests/<int:pk>/", views.digest_web, name="digest_web"),
]
