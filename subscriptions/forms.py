from datetime import timedelta

from django import forms
from django.utils import timezone
from email_validator import EmailNotValidError, validate_email

from digest.query import MAX_QUERY_LENGTH, QueryError, parse_query
from scraper.models import Source

from .models import TIMEZONE_CHOICES, Subscriber
from .services import normalize_query

TOPIC_REQUIRED = 'Write a topic first, for example: LoRA or "continual pre-training".'
TOPIC_TOO_LONG = f"A topic can be at most {MAX_QUERY_LENGTH} characters."
MAX_PAUSE_DAYS = 366
_ZONES = frozenset(TIMEZONE_CHOICES)


def clean_topic(value: str) -> str:
    """A query with its whitespace collapsed, parsed; errors say what and where, in words."""
    query = normalize_query(value)
    if not query:
        raise forms.ValidationError(TOPIC_REQUIRED)
    try:
        parse_query(query)
    except QueryError as err:
        raise forms.ValidationError(
            f"{err.message[:1].upper()}{err.message[1:]} (at character {err.position + 1})."
        ) from err
    return query


def clean_timezone(value: str) -> str:
    value = value.strip()
    if value in _ZONES:
        return value
    lowered = {zone.lower(): zone for zone in _ZONES}
    if value.lower() in lowered:
        return lowered[value.lower()]
    raise forms.ValidationError(
        f"“{value[:64]}” is not a time zone we know. Use a name like Europe/Paris or UTC."
    )


class EmailForm(forms.Form):
    """An address, validated and normalised, and a honeypot field humans never see."""

    email = forms.CharField(
        max_length=254,
        error_messages={
            "required": "Enter your email address.",
            "max_length": "That address is too long: at most 254 characters.",
        },
    )
    # Hidden from people by CSS and from screen readers; bots fill every field.
    website = forms.CharField(required=False, max_length=500)

    def clean_email(self):
        try:
            result = validate_email(self.cleaned_data["email"].strip(), check_deliverability=False)
        except EmailNotValidError as err:
            raise forms.ValidationError(f"That email address is not valid: {err}") from err
        return result.normalized

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))


class SignupForm(EmailForm):
    query = forms.CharField(
        max_length=MAX_QUERY_LENGTH,
        required=False,
        strip=False,
        error_messages={"max_length": TOPIC_TOO_LONG},
    )
    timezone = forms.CharField(required=False, max_length=64)

    def clean_query(self):
        query = self.cleaned_data["query"]
        return clean_topic(query) if query.strip() else ""

    def clean_timezone(self):
        # Proposed by the browser; a zone we do not know is simply not used.
        try:
            return clean_timezone(self.cleaned_data["timezone"])
        except forms.ValidationError:
            return ""


class TopicForm(forms.Form):
    query = forms.CharField(
        max_length=MAX_QUERY_LENGTH,
        strip=False,
        error_messages={"required": TOPIC_REQUIRED, "max_length": TOPIC_TOO_LONG},
    )

    def clean_query(self):
        return clean_topic(self.cleaned_data["query"])


class ScheduleForm(forms.ModelForm):
    timezone = forms.CharField(
        max_length=64,
        error_messages={"required": "Choose a time zone, for example Europe/Paris or UTC."},
    )
    delivery_hour = forms.TypedChoiceField(
        choices=[(h, f"{h:02d}:00") for h in range(24)],
        coerce=int,
        error_messages={"invalid_choice": "Choose an hour between 00:00 and 23:00."},
    )
    max_papers = forms.IntegerField(
        min_value=1,
        max_value=100,
        error_messages={
            "invalid": "Enter a whole number of papers.",
            "min_value": "At least 1 paper.",
            "max_value": "At most 100 papers per digest.",
            "required": "Enter how many papers a digest may hold.",
        },
    )
    min_upvotes = forms.IntegerField(
        min_value=0,
        max_value=100_000,
        error_messages={
            "invalid": "Enter a whole number of upvotes (0 for all papers).",
            "min_value": "Upvotes cannot be negative: use 0 for all papers.",
            "max_value": "At most 100000 upvotes.",
            "required": "Enter a minimum of upvotes (0 for all papers).",
        },
    )
    sources = forms.ModelMultipleChoiceField(
        queryset=Source.objects.filter(enabled=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": "That source is not offered any more.",
            "invalid_pk_value": "That source is not offered any more.",
        },
    )

    class Meta:
        model = Subscriber
        fields = ["frequency", "weekday", "delivery_hour", "timezone", "max_papers",
                  "min_upvotes", "sources"]  # fmt: skip
        error_messages = {
            "frequency": {"invalid_choice": "Choose daily or weekly."},
            "weekday": {"invalid_choice": "Choose a day of the week."},
        }

    def clean_timezone(self):
        return clean_timezone(self.cleaned_data["timezone"])


class PauseForm(forms.Form):
    until = forms.DateField(
        error_messages={
            "required": "Choose the last day of your pause.",
            "invalid": "Enter a date like 2026-12-31.",
        }
    )

    def __init__(self, *args, subscriber: Subscriber, **kwargs):
        super().__init__(*args, **kwargs)
        self.subscriber = subscriber

    def clean_until(self):
        until = self.cleaned_data["until"]
        today = timezone.localdate(timezone=self.subscriber.tz)
        if until < today:
            raise forms.ValidationError("That day has passed: choose today or a later day.")
        if until > today + timedelta(days=MAX_PAUSE_DAYS):
            raise forms.ValidationError("You can pause for at most a year.")
        return until


class DeleteForm(forms.Form):
    confirm = forms.BooleanField(
        error_messages={"required": "Tick the box to confirm that everything should go."}
    )
