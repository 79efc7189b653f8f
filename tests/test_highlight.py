"""Highlighting maps normalised text back to the source characters, fast path included."""

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.query import _clusters, highlight, normalize


def clusters_one_by_one(text):
    pieces, origin, i = [], [], 0
    while i < len(text):
        j = i + 1
        while j < len(text) and unicodedata.combining(text[j]):
            j += 1
        piece = normalize(text[i:j])
        pieces.append(piece)
        origin.extend([i] * len(piece))
        i = j
    return "".join(pieces), origin


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("aBz -.…ﬁÉe\u0301\u0308ß1İ"), max_size=40)
    | st.text(max_size=40)
)
def test_clusters_agree_with_normalising_each_character(text):
    assert _clusters(text) == clusters_one_by_one(text)


def test_it_marks_words_in_mixed_ascii_and_unicode_text():
    html = highlight("Über LLMs for pre-training… and Müller's LLM", ["llm", "pretraining", "über"])
    assert html == (
        "<mark>Über</mark> <mark>LLMs</mark> for <mark>pre-training</mark>… and "
        "Müller&#x27;s <mark>LLM</mark>"
    )
