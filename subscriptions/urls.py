from django.urls import path

from . import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("manage/<str:key>/", views.manage, name="manage"),
    path("manage/<str:key>/topics/", views.topic_add, name="topic_add"),
    path("manage/<str:key>/topics/<int:topic_id>/delete/", views.topic_delete, name="topic_delete"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/resubscribe/", views.resubscribe, name="resubscribe"),
]
