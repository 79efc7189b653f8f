from django.urls import path

from . import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("link/", views.link_request, name="link_request"),
    path("sample/", views.sample, name="sample"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("manage/<str:key>/", views.manage, name="manage"),
    path("manage/<str:key>/topics/", views.topic_add, name="topic_add"),
    path("manage/<str:key>/topics/<int:topic_id>/", views.topic_edit, name="topic_edit"),
    path("manage/<str:key>/topics/<int:topic_id>/delete/", views.topic_delete, name="topic_delete"),
    path("manage/<str:key>/preview/", views.topic_preview, name="topic_preview"),
    path("manage/<str:key>/schedule/", views.schedule, name="manage_schedule"),
    path("manage/<str:key>/pause/", views.pause, name="pause"),
    path("manage/<str:key>/resume/", views.resume, name="resume"),
    path("manage/<str:key>/send-preview/", views.send_preview, name="send_preview"),
    path("manage/<str:key>/history/", views.history, name="manage_history"),
    path("manage/<str:key>/feed/", views.feed, name="feed"),
    # Resolved before digest's own route of the same address (named digest_web), to check the
    # key first: a NUL byte in it would otherwise reach PostgreSQL.
    path("manage/<str:key>/digests/<int:pk>/", views.digest_page),
    path("manage/<str:key>/account/", views.account, name="manage_account"),
    path("manage/<str:key>/data.json", views.data_export, name="data_export"),
    path("manage/<str:key>/delete/", views.delete, name="delete"),
    path("unsubscribe/topic/<str:token>/", views.topic_unsubscribe, name="topic_unsubscribe"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/resubscribe/", views.resubscribe, name="resubscribe"),
]
