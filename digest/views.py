from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.clickjacking import xframe_options_sameorigin

from subscriptions.models import Subscriber

from . import services
from .models import Digest, OutboxMessage


def digest_web(request, key, pk):
    """ "View in browser": the whole digest, including papers past the email's cap."""
    subscriber = get_object_or_404(Subscriber, key=key)
    digest = get_object_or_404(Digest, pk=pk, subscriber=subscriber)
    return render(request, "digest/web.html", services.digest_context(digest))


def outbox_list(request):
    return render(request, "digest/outbox.html", {"messages_": OutboxMessage.objects.all()[:200]})


def outbox_detail(request, pk):
    return render(
        request, "digest/outbox_detail.html", {"message": get_object_or_404(OutboxMessage, pk=pk)}
    )


@xframe_options_sameorigin
def outbox_html(request, pk):
    message = get_object_or_404(OutboxMessage, pk=pk)
    response = HttpResponse(message.html or "<p>(no HTML part)</p>")
    # Mail HTML is shown in a sandboxed frame: no scripts, no same-origin access.
    response["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; img-src https: data:; style-src 'unsafe-inline'"
    )
    return response
