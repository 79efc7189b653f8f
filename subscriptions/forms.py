from django import forms
from email_validator import EmailNotValidError, validate_email

from digest.query import MAX_QUERY_LENGTH, QueryError, parse_query


class SignupForm(forms.Form):
    email = forms.CharField(
        max_length=254,
        error_messages={
            "required": "Enter your email address.",
            "max_length": "That address is too long: at most 254 characters.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.org"}),
    )
    query = forms.CharField(
        max_length=MAX_QUERY_LENGTH,
        required=False,
        error_messages={"max_length": f"A topic can be at most {MAX_QUERY_LENGTH} characters."},
    )

    def clean_email(self):
        try:
            result = validate_email(self.cleaned_data["email"].strip(), check_deliverability=False)
        except EmailNotValidError as err:
            raise forms.ValidationError(f"That email address is not valid: {err}") from err
        return result.normalized

    def clean_query(self):
        query = " ".join(self.cleaned_data["query"].split())
        if query:
            try:
                parse_query(query)
            except QueryError as err:
                raise forms.ValidationError(
                    f"{err.message} (at character {err.position + 1})"
                ) from err
        return query


class TopicForm(forms.Form):
    query = forms.CharField(
        max_length=MAX_QUERY_LENGTH,
        strip=True,
        error_messages={
            "required": 'Write a topic first, for example: LoRA or "continual pre-training".',
            "max_length": f"A topic can be at most {MAX_QUERY_LENGTH} characters.",
        },
        widget=forms.TextInput(attrs={"placeholder": '"continual pre-training" or LoRA'}),
    )
