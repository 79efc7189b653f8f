import re
from functools import wraps

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import feedgenerator, timezone
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from digest.models import Digest
from digest.query import QueryError
from digest.selectors import digest_entries

from . import ratelimit, selectors, services, tokens
from .forms import (
    DeleteForm,
    EmailForm,
    PauseForm,
    ScheduleForm,
    SignupForm,
    TopicForm,
)
from .models import Subscriber


def _rate_limited(view):
    """Turn a RateLimited raised anywhere in the view into the friendly 429 page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ratelimit.RateLimited as err:
            response = render(
                request,
                "subscriptions/rate_limited.html",
                {"minutes": max(1, round(err.retry_after / 60)), "scope": err.scope},
                status=429,
            )
            response["Retry-After"] = str(err.retry_after)
            return response

    return wrapper


def _link_problem(request, problem="invalid", status=400):
    return render(
        request,
        "subscriptions/link_problem.html",
        {"problem": problem, "form": SignupForm()},
        status=status,
    )


# --- Landing, sign-up, "send me my link" ------------------------------------------------------


def _landing(request, *, form=None, link_form=None, status=200):
    return render(
        request,
        "subscriptions/landing.html",
        {
            "form": form or SignupForm(),
            "link_form": link_form or EmailForm(),
            "sample": selectors.sample_digest()[:1],
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@_rate_limited
def landing(request):
    if request.method != "POST":
        return _landing(request)
    form = SignupForm(request.POST)
    if form.is_bot:
        return render(request, "subscriptions/check_inbox.html", {"email": ""})
    if not form.is_valid():
        return _landing(request, form=form, status=400)
    email = form.cleaned_data["email"]
    ratelimit.check(request, "signup", email=email)
    query = form.cleaned_data["query"]
    services.subscriber_signup(
        email=email, queries=[query] if query else [], timezone_name=form.cleaned_data["timezone"]
    )
    return render(request, "subscriptions/check_inbox.html", {"email": email})


@require_http_methods(["GET", "HEAD", "POST"])
@_rate_limited
def link_request(request):
    if request.method != "POST":
        return redirect(reverse("landing") + "#link")
    form = EmailForm(request.POST)
    if form.is_bot:
        return render(request, "subscriptions/link_sent.html", {"email": ""})
    if not form.is_valid():
        return _landing(request, link_form=form, status=400)
    email = form.cleaned_data["email"]
    ratelimit.check(request, "link", email=email)
    services.subscriber_request_link(email=email)
    return render(request, "subscriptions/link_sent.html", {"email": email})


@require_GET
def sample(request):
    return render(request, "subscriptions/sample.html", {"groups": selectors.sample_digest()})


# --- Confirm ------------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request, token):
    try:
        subscriber = tokens.subscriber_for_confirm_token(token)
    except tokens.TokenExpired:
        return _link_problem(request, "expired", status=410)
    if subscriber is None or subscriber.status == Subscriber.Status.SUPPRESSED:
        return _link_problem(request)
    if request.method == "POST":
        services.subscriber_confirm(subscriber=subscriber)
        messages.success(request, "You're subscribed. Add the topics you care about below.")
        return redirect("manage", key=subscriber.key)
    return render(request, "subscriptions/confirm.html", {"subscriber": subscriber})


# --- Preferences centre ---------------------------------------------------------------------


_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _manage_view(methods):
    """A preferences page: looked up by its key (unknown keys get the friendly 404), never
    cached, never indexed."""

    def decorate(view):
        @require_http_methods(methods)
        @never_cache
        @_rate_limited
        @wraps(view)
        def wrapper(request, key, *args, **kwargs):
            if not _KEY_RE.fullmatch(key):
                raise Http404("no such key")
            subscriber = get_object_or_404(Subscriber, key=key)
            response = view(request, subscriber, *args, **kwargs)
            response["X-Robots-Tag"] = "noindex"
            return response

        return wrapper

    return decorate


def _page(request, subscriber, template, section, status=200, **context):
    return render(
        request,
        template,
        {
            "subscriber": subscriber,
            "section": section,
            # The preferences pages' common prefix: one reverse() instead of one per link.
            "base": reverse("manage", args=[subscriber.key]),
            "unsubscribe_token": tokens.unsubscribe_token(subscriber),
            **context,
        },
        status=status,
    )


def _topics_page(request, subscriber, *, topic_form=None, preview=None, edit=None, status=200):
    return _page(
        request,
        subscriber,
        "subscriptions/manage.html",
        "topics",
        status=status,
        topics=selectors.topics_with_recent_matches(subscriber=subscriber),
        topic_form=topic_form or TopicForm(),
        preview=preview,
        edit=edit or {},
    )


def _preview_of(query: str):
    try:
        return {"query": query, "matches": selectors.query_matches(query=query)}
    except QueryError:
        return None


@_manage_view(["GET", "HEAD"])
def manage(request, subscriber):
    return _topics_page(request, subscriber)


@_manage_view(["POST"])
def topic_add(request, subscriber):
    form = TopicForm(request.POST)
    if not form.is_valid():
        return _topics_page(request, subscriber, topic_form=form, status=400)
    query = form.cleaned_data["query"]
    if request.POST.get("action") == "preview":
        ratelimit.check(request, "preview")
        return _topics_page(request, subscriber, topic_form=form, preview=_preview_of(query))
    try:
        topic = services.topic_add(subscriber=subscriber, query=query)
    except services.TopicError as err:
        form.add_error("query", str(err))
        return _topics_page(request, subscriber, topic_form=form, status=400)
    messages.success(request, f"Added “{topic.query}”.")
    return redirect(reverse("manage", args=[subscriber.key]) + f"#topic-{topic.pk}")


@_manage_view(["POST"])
def topic_edit(request, subscriber, topic_id):
    topic = get_object_or_404(subscriber.topics, pk=topic_id)
    form = TopicForm(request.POST)
    if form.is_valid():
        try:
            services.topic_update(
                subscriber=subscriber, topic_id=topic.pk, query=form.cleaned_data["query"]
            )
        except services.TopicError as err:
            form.add_error("query", str(err))
        else:
            messages.success(request, "Topic saved.")
            return redirect(reverse("manage", args=[subscriber.key]) + f"#topic-{topic.pk}")
    return _topics_page(
        request,
        subscriber,
        edit={
            "id": topic.pk,
            "value": request.POST.get("query", ""),
            "error": form.errors["query"][0],
        },
        status=400,
    )


@_manage_view(["POST"])
def topic_delete(request, subscriber, topic_id):
    if services.topic_delete(subscriber=subscriber, topic_id=topic_id):
        messages.success(request, "Topic removed.")
    return redirect("manage", key=subscriber.key)


@_manage_view(["GET"])
def topic_preview(request, subscriber):
    """The live preview's fragment: what a query being typed matches, or why it cannot."""
    ratelimit.check(request, "preview")
    form = TopicForm({"query": request.GET.get("query", "")})
    context = {"subscriber": subscriber}
    if form.data["query"].strip():
        if form.is_valid():
            context["preview"] = _preview_of(form.cleaned_data["query"])
        else:
            context["error"] = form.errors["query"][0]
    return render(request, "subscriptions/_preview.html", context)


@_manage_view(["GET", "HEAD", "POST"])
def schedule(request, subscriber):
    form = ScheduleForm(request.POST or None, instance=subscriber)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            services.subscriber_set_schedule(
                subscriber=subscriber,
                sources=data["sources"],
                **{name: data[name] for name in services.SCHEDULE_FIELDS},
            )
            messages.success(request, "Schedule saved.")
            return redirect("manage_schedule", key=subscriber.key)
        subscriber.refresh_from_db()
    return _schedule_page(request, subscriber, form=form, status=400 if form.errors else 200)


def _schedule_page(request, subscriber, *, form=None, pause_form=None, status=200):
    today = timezone.localdate(timezone=subscriber.tz)
    form = form or ScheduleForm(instance=subscriber)
    if form.is_bound:
        selected = {int(v) for v in form.data.getlist("sources") if str(v).isdigit()}
    else:
        selected = {s.pk for s in form.initial.get("sources", ())}
    return _page(
        request,
        subscriber,
        "subscriptions/schedule.html",
        "schedule",
        status=status,
        form=form,
        pause_form=pause_form or PauseForm(subscriber=subscriber),
        today=today,
        selected_sources=selected,
        next_delivery=selectors.next_delivery_text(subscriber=subscriber),
    )


@_manage_view(["POST"])
def pause(request, subscriber):
    form = PauseForm(request.POST, subscriber=subscriber)
    if not form.is_valid():
        return _schedule_page(request, subscriber, pause_form=form, status=400)
    services.subscriber_pause(subscriber=subscriber, until=form.cleaned_data["until"])
    messages.success(
        request, f"Paused until {form.cleaned_data['until']:%A %-d %B %Y}. Enjoy the quiet."
    )
    return redirect("manage_schedule", key=subscriber.key)


@_manage_view(["POST"])
def resume(request, subscriber):
    services.subscriber_resume(subscriber=subscriber)
    messages.success(request, "Welcome back: your digest is on again.")
    return redirect("manage_schedule", key=subscriber.key)


@_manage_view(["POST"])
def send_preview(request, subscriber):
    ratelimit.check(request, "preview_email", subject=subscriber.key)
    if services.subscriber_send_preview(subscriber=subscriber):
        messages.success(
            request,
            "A preview is on its way: the papers matching your topics now, if any are new. "
            "It appears under History.",
        )
    else:
        messages.error(request, "Previews go only to confirmed, subscribed addresses.")
    return redirect("manage_schedule", key=subscriber.key)


@_manage_view(["GET", "HEAD"])
def history(request, subscriber):
    return _page(
        request,
        subscriber,
        "subscriptions/history.html",
        "history",
        report=selectors.delivery_report(subscriber=subscriber),
    )


@_manage_view(["GET", "HEAD"])
def digest_page(request, subscriber, pk):
    """digest.views.digest_web (the "view in browser" link), behind the preferences pages'
    key check, caching and indexing rules; it answers the digest_web route's address."""
    from digest.views import digest_web

    return digest_web(request, key=subscriber.key, pk=pk)


@_manage_view(["GET", "HEAD"])
def feed(request, subscriber):
    """A private Atom feed of the digests sent, each entry the digest's papers."""
    manage_url = services.manage_url(subscriber)
    atom = feedgenerator.Atom1Feed(
        title="Your Paperboy digest",
        link=manage_url,
        description="New research papers on your topics.",
        language="en",
        feed_url=request.build_absolute_uri(),
    )
    sent = list(subscriber.digests.filter(status=Digest.Status.SENT).order_by("-created_at")[:20])
    entries = digest_entries(sent)
    for digest in sent:
        url = services.site_url(reverse("digest_web", args=[subscriber.key, digest.pk]))
        body = "".join(
            f'<li><a href="{escape(item.paper.url)}">{escape(item.paper.title)}</a>'
            f" ({escape(', '.join(item.topics))})</li>"
            for item in entries[digest.pk]
        )
        atom.add_item(
            title=digest.subject or "Your digest",
            link=url,
            unique_id=url,
            description=f"<ul>{body}</ul>",
            pubdate=digest.sent_at or digest.created_at,
            updateddate=digest.sent_at or digest.created_at,
        )
    response = HttpResponse(content_type="application/atom+xml; charset=utf-8")
    atom.write(response, "utf-8")
    return response


@_manage_view(["GET", "HEAD"])
def account(request, subscriber):
    return _page(request, subscriber, "subscriptions/account.html", "account", form=DeleteForm())


@_manage_view(["GET", "HEAD"])
def data_export(request, subscriber):
    response = HttpResponse(
        selectors.export_json(subscriber=subscriber), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="paperboy-my-data.json"'
    return response


@_manage_view(["POST"])
def delete(request, subscriber):
    form = DeleteForm(request.POST)
    if not form.is_valid():
        return _page(
            request, subscriber, "subscriptions/account.html", "account", form=form, status=400
        )
    email = subscriber.email
    services.subscriber_delete(subscriber=subscriber)
    return render(request, "subscriptions/deleted.html", {"email": email})


# --- Unsubscribe ------------------------------------------------------------------------------


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    """GET shows a button (mail scanners open links); POST unsubscribes at once, including
    the RFC 8058 one-click POST, which carries no cookie and no CSRF token."""
    subscriber = tokens.subscriber_for_unsubscribe_token(token)
    if subscriber is None:
        return _link_problem(request)
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
        return _link_problem(request)
    if subscriber.status == Subscriber.Status.SUPPRESSED:
        messages.error(request, "This address bounced, so we cannot send to it.")
    elif not subscriber.confirmed_at:
        messages.error(request, "Confirm your address first: use the link in your email.")
    else:
        services.subscriber_resubscribe(subscriber=subscriber)
        messages.success(request, "Welcome back: your digest is on again.")
    return redirect("manage", key=subscriber.key)


@require_http_methods(["GET", "HEAD", "POST"])
def topic_unsubscribe(request, token):
    """Stop one topic from a link in a digest: GET asks, POST removes the topic."""
    subscriber, topic = tokens.topic_for_unsubscribe_token(token)
    if subscriber is None:
        return _link_problem(request)
    context = {"subscriber": subscriber, "topic": topic}
    if topic is not None and request.method == "POST":
        context["removed"] = topic.query
        services.topic_delete(subscriber=subscriber, topic_id=topic.pk)
        context["topic"] = None
    return render(request, "subscriptions/topic_unsubscribe.html", context)
