from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, services, tokens
from .forms import SignupForm, TopicForm
from .models import Subscriber


def landing(request):
    if request.method != "POST":
        return render(request, "subscriptions/landing.html", {"form": SignupForm()})
    form = SignupForm(request.POST)
    if not form.is_valid():
        return render(request, "subscriptions/landing.html", {"form": form}, status=400)
    query = form.cleaned_data["query"]
    services.subscriber_signup(email=form.cleaned_data["email"], queries=[query] if query else [])
    return render(request, "subscriptions/check_inbox.html", {"email": form.cleaned_data["email"]})


@require_http_methods(["GET", "POST"])
def confirm(request, token):
    try:
        subscriber = tokens.subscriber_for_confirm_token(token)
    except tokens.TokenExpired:
        return render(
            request,
            "subscriptions/link_problem.html",
            {"problem": "expired", "form": SignupForm()},
            status=410,
        )
    if subscriber is None or subscriber.status == Subscriber.Status.SUPPRESSED:
        return render(
            request,
            "subscriptions/link_problem.html",
            {"problem": "invalid", "form": SignupForm()},
            status=400,
        )
    if request.method == "POST":
        services.subscriber_confirm(subscriber=subscriber)
        messages.success(request, "You're subscribed. Add the topics you care about below.")
        return redirect("manage", key=subscriber.key)
    return render(request, "subscriptions/confirm.html", {"subscriber": subscriber})


def _subscriber_or_404(key) -> Subscriber:
    return get_object_or_404(Subscriber, key=key)


def _manage_page(request, subscriber, *, topic_form=None, status=200):
    return render(
        request,
        "subscriptions/manage.html",
        {
            "subscriber": subscriber,
            "topics": selectors.topics_with_recent_counts(subscriber=subscriber),
            "topic_form": topic_form or TopicForm(),
            "digests": subscriber.digests.all()[:20],
            "unsubscribe_token": tokens.unsubscribe_token(subscriber),
        },
        status=status,
    )


def manage(request, key):
    return _manage_page(request, _subscriber_or_404(key))


@require_POST
def topic_add(request, key):
    subscriber = _subscriber_or_404(key)
    form = TopicForm(request.POST)
    if form.is_valid():
        try:
            topic = services.topic_add(subscriber=subscriber, query=form.cleaned_data["query"])
        except services.TopicError as err:
            form.add_error("query", str(err))
        else:
            messages.success(request, f"Added “{topic.query}”.")
            return redirect("manage", key=key)
    return _manage_page(request, subscriber, topic_form=form, status=400)


@require_POST
def topic_delete(request, key, topic_id):
    subscriber = _subscriber_or_404(key)
    if services.topic_delete(subscriber=subscriber, topic_id=topic_id):
        messages.success(request, "Topic removed.")
    return redirect("manage", key=key)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """GET shows a button (mail scanners open links); POST unsubscribes at once, including
    the RFC 8058 one-click POST, which carries no cookie and no CSRF token."""
    subscriber = tokens.subscriber_for_unsubscribe_token(token)
    if subscriber is None:
        return render(
            request,
            "subscriptions/link_problem.html",
            {"problem": "invalid", "form": SignupForm()},
            status=400,
        )
    if request.method == "POST":
        services.subscriber_unsubscribe(subscriber=subscriber)
        return render(
            request, "subscriptions/unsubscribed.html", {"subscriber": subscriber, "token": token}
        )
    return render(
        request, "subscriptions/unsubscribe.html", {"subscriber": subscriber, "token": token}
    )


@require_POST
def resubscribe(request, token):
    subscriber = tokens.subscriber_for_unsubscribe_token(token)
    if subscriber is None:
        return render(
            request,
            "subscriptions/link_problem.html",
            {"problem": "invalid", "form": SignupForm()},
            status=400,
        )
    services.subscriber_resubscribe(subscriber=subscriber)
    messages.success(request, "Welcome back: your digest is on again.")
    return redirect("manage", key=subscriber.key)
