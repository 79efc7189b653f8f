from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("anymail/", include("anymail.urls")),
    path("", include("subscriptions.urls")),
    path("", include("digest.urls")),
]

if settings.DEBUG:
    urlpatterns.append(path("outbox/", include("digest.outbox_urls")))
