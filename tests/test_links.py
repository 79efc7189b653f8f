"""The links in emails: config.reverse.cached_reverse gives what Django's reverse() gives."""

import pytest
from django.urls import NoReverseMatch, reverse
from hypothesis import given
from hypothesis import strategies as st

from config.reverse import cached_reverse

# What Paperboy puts in its URLs: keys and signed tokens (URL-safe base64 and ':'), ids.
tokens = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:.", min_size=1
)


@given(token=tokens, pk=st.integers(min_value=0, max_value=2**63 - 1))
def test_cached_reverse_is_reverse(token, pk):
    for name in ("manage", "unsubscribe", "topic_unsubscribe", "confirm"):
        assert cached_reverse(name, token) == reverse(name, args=[token])
    assert cached_reverse("digest_web", token, pk) == reverse("digest_web", args=[token, pk])
    assert cached_reverse("landing") == reverse("landing")


def test_a_url_given_the_wrong_number_of_arguments_is_refused():
    with pytest.raises(NoReverseMatch):
        cached_reverse("digest_web", "key")
