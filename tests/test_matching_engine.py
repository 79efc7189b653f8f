"""The matching engine: the topic index agrees with a plain evaluation of each query's parse
tree, on any queries and texts; the parser fails only with QueryError; the index only
verifies the topics a paper's tokens point to."""

import html
import itertools
import re
from unittest import mock

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from digest import matching
from digest.matching import TopicIndex, TopicMatch, _or_form, _read_codes
from digest.query import (
    And,
    Or,
    Query,
    QueryError,
    Term,
    document_for,
    highlight,
    parse_query,
    plain_form,
)

WORDS = [
    "robot",
    "robots",
    "robotic",
    "arm",
    "pre",
    "training",
    "pretraining",
    "model",
    "models",
    "llm",
    "LLMs",
    "studies",
    "study",
    "vision",
    "language",
    "núñez",
    "Straße",
    "x2",
    "a",
]
FIELDS = ["", "", "", "title:", "abstract:", "author:"]


# --- A plain evaluator of the parse tree ------------------------------------------------------


def spellings(units) -> list[tuple[str, ...]]:
    """Every token sequence a phrase's units stand for."""
    options = [[(u,)] if isinstance(u, str) else [tuple(u[0]), (u[1],)] for u in units]
    return [sum(combo, ()) for combo in itertools.product(*options)]


def has_path(spans, sequence) -> bool:
    triples = [(token, s, e) for token, places in spans.items() for s, e in places]

    def walk(rest, at) -> bool:
        if not rest:
            return True
        return any(walk(rest[1:], e) for t, s, e in triples if t == rest[0] and s == at)

    return any(walk(sequence[1:], e) for t, _, e in triples if t == sequence[0])


def plain(node, doc) -> bool:
    if isinstance(node, And):
        return all(plain(child, doc) for child in node.children)
    if isinstance(node, Or):
        return any(plain(child, doc) for child in node.children)
    assert isinstance(node, Term)
    fields = [node.field] if node.field else ["title", "abstract"]
    found = any(
        has_path(getattr(doc, field), sequence)
        for field in fields
        for sequence in spellings(node.units)
    )
    return found != node.negated


# --- Strategies ---------------------------------------------------------------------------------

words = st.sampled_from(WORDS)
separators = st.sampled_from([" ", " ", " ", "-", ", ", " - ", "_", ". "])


@st.composite
def texts(draw, max_words=12):
    chosen = draw(st.lists(words, max_size=max_words))
    out = ""
    for word in chosen:
        out += word + draw(separators)
    return out


@st.composite
def terms(draw):
    if draw(st.booleans()):
        body = draw(words)
        if draw(st.integers(0, 3)) == 0:
            body += "-" + draw(words)
    else:
        inner = draw(st.lists(words, min_size=1, max_size=3))
        body = '"' + "".join(w + draw(st.sampled_from([" ", "-"])) for w in inner).strip(" -")
        body += '"'
    return ("-" if draw(st.integers(0, 4)) == 0 else "") + draw(st.sampled_from(FIELDS)) + body


@st.composite
def queries(draw, depth=2):
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        if depth and draw(st.integers(0, 4)) == 0:
            parts.append("(" + draw(queries(depth=depth - 1)) + ")")
        else:
            parts.append(draw(terms()))
        if draw(st.integers(0, 3)) == 0:
            parts.append(draw(st.sampled_from(["OR", "AND"])))
    if parts[-1] in ("OR", "AND"):
        parts.pop()
    return " ".join(parts)


def parsed_or_none(text: str) -> Query | None:
    try:
        return parse_query(text)
    except QueryError:
        return None


papers = st.tuples(
    texts(), texts(), st.lists(st.sampled_from(["Ana Núñez", "Grace Hopper", "Robot Arm"]))
)
quick = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- Properties ---------------------------------------------------------------------------------


@quick
@given(st.lists(queries(), min_size=1, max_size=12), st.lists(papers, min_size=1, max_size=4))
def test_the_index_agrees_with_a_plain_evaluation_of_every_parse_tree(texts_, docs):
    parsed = {i: parsed_or_none(text) for i, text in enumerate(texts_)}
    assume(any(parsed.values()))
    index = TopicIndex()
    for i, text in enumerate(texts_):
        index.add(i, text)
    assert len(index) == sum(1 for q in parsed.values() if q is not None)
    for title, abstract, authors in docs:
        doc = document_for(title=title, abstract=abstract, authors=authors)
        expected = {i for i, q in parsed.items() if q is not None and plain(q.tree, doc)}
        assert {hit.topic_id for hit in index.match(doc)} == expected
        for i, query in parsed.items():
            if query is not None:
                assert (query.match(doc) is not None) == (i in expected), texts_[i]


def change_topics(index: TopicIndex, current: dict, changes) -> None:
    """Apply (topic_id, query or None to remove) to the index and to `current` alike."""
    for topic_id, text in changes:
        if text is None:
            index.remove(topic_id)
            current.pop(topic_id, None)
        else:
            index.add(topic_id, text)
            current[topic_id] = parsed_or_none(text)


@quick
@given(
    st.lists(st.tuples(st.integers(0, 6), st.one_of(st.none(), queries())), max_size=25),
    papers,
)
def test_the_index_stays_right_as_topics_are_added_changed_and_removed(operations, paper):
    index, current = TopicIndex(), {}
    change_topics(index, current, operations)
    current = {i: q for i, q in current.items() if q is not None}
    doc = document_for(title=paper[0], abstract=paper[1], authors=paper[2])
    assert len(index) == len(current)
    expected = sorted(i for i, q in current.items() if plain(q.tree, doc))
    assert [hit.topic_id for hit in index.match(doc)] == expected


@quick
@given(
    st.lists(queries(), min_size=1, max_size=12),
    st.lists(papers, min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 14), st.one_of(st.none(), queries())), max_size=8),
    papers,
)
def test_a_batch_agrees_with_a_plain_evaluation_for_every_topic_and_paper(
    texts_, docs, changes, another
):
    index = TopicIndex()
    index.add_many(enumerate(texts_))
    current = {i: parsed_or_none(text) for i, text in enumerate(texts_)}
    for round_ in range(2):
        current = {i: q for i, q in current.items() if q is not None}
        batch_docs = [document_for(title=t, abstract=a, authors=au) for t, a, au in docs]
        batch = index.match_batch(batch_docs)
        with mock.patch.object(matching, "_EAGER", 1):  # every term's bitset at once
            assert sorted(index.match_batch(batch_docs).queries()) == sorted(batch.queries())
        assert len(index) == len(current)
        expected_count = 0
        for i in range(15):
            expected = [
                p
                for p, doc in enumerate(batch_docs)
                if i in current and plain(current[i].tree, doc)
            ]
            expected_count += len(expected)
            assert batch.papers(i) == expected, (round_, index._topics.get(i))
            for p in range(len(batch_docs)):
                found = batch.match(i, p)
                assert (found is not None) == (p in expected)
                if found is not None:
                    assert found == current[i].match(batch_docs[p])
        assert batch.count() == expected_count
        # Then topics change between batches, one at a time and in bulk.
        change_topics(index, current, changes)
        index.add_many([(14, another[0] or "x"), (13, "robot"), (14, "arm OR robot")])
        current.update({13: parse_query("robot"), 14: parse_query("arm OR robot")})
        docs = [*docs, another]


@quick
@given(st.one_of(queries(), st.text(alphabet='"()-: ORANDtilebx\t&', max_size=30)))
def test_the_quick_reading_of_queries_means_what_the_parser_reads(text):
    index = TopicIndex()
    codes = index._codes(text)
    quick = None if codes is None else _read_codes(codes)
    try:
        tree = parse_query(text).tree
    except QueryError:
        assert quick is None
    else:
        if quick is not None:
            assert quick == _or_form(tree, index._term_id)
        index.add(1, text)
        assert len(index) == 1


query_characters = st.text(alphabet='"“()-: ORANDtilebsrcuhx\u00ad\u2010é\t', max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=120), query_characters, queries()))
def test_no_input_makes_the_parser_raise_anything_but_query_error(text):
    try:
        query = parse_query(text)
    except QueryError as err:
        assert err.message
        assert 0 <= err.position <= len(text)
        assert err.caret(text).endswith("^")
    else:
        query.match(document_for(title=text, abstract=text, authors=[text]))


@quick
@given(st.one_of(queries(), st.text(alphabet=' "abcORAND12-', max_size=30)))
def test_the_quick_reading_of_plain_queries_means_what_the_parser_reads(text):
    form = plain_form(text)
    if form is not None:
        assert parse_query(text).plain == form


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80), st.lists(st.one_of(words, st.text(max_size=10)), max_size=3))
def test_highlighting_only_adds_marks_to_the_escaped_text(text, terms_):
    marked = str(highlight(text, terms_))
    assert "<" not in marked.replace("<mark>", "").replace("</mark>", "")
    assert html.unescape(re.sub("</?mark>", "", marked)) == text


# --- The index ----------------------------------------------------------------------------------


def doc_of(title: str, abstract: str = ""):
    return document_for(title=title, abstract=abstract)


def test_it_skips_invalid_queries():
    index = TopicIndex()
    index.add(1, "robot OR")
    index.add(2, "robot")
    assert len(index) == 1
    assert [hit.topic_id for hit in index.match(doc_of("Robot arms"))] == [2]


def test_adding_a_topic_again_replaces_its_query():
    index = TopicIndex()
    index.add(1, "robot")
    index.add(1, "arm")
    assert [hit.topic_id for hit in index.match(doc_of("Arm"))] == [1]
    assert list(index.match(doc_of("Robot"))) == []
    index.add(1, "robot OR")
    assert len(index) == 0, "an invalid new query leaves the topic out"


def test_removed_topics_no_longer_match_and_others_with_the_same_query_still_do():
    index = TopicIndex()
    for topic_id in (1, 2, 3):
        index.add(topic_id, "LLM agents")
    index.remove(2)
    index.remove(99)
    assert len(index) == 2
    assert [hit.topic_id for hit in index.match(doc_of("LLM agents"))] == [1, 3]


def test_it_yields_topic_matches_in_topic_id_order_with_score_and_terms():
    index = TopicIndex()
    index.add(5, '"continual pre-training"')
    index.add(3, "LLM")
    index.add(4, "video")
    hits = list(index.match(doc_of("Continual pre-training of LLMs", "For video.")))
    assert [hit.topic_id for hit in hits] == [3, 4, 5]
    assert hits[0] == TopicMatch(3, hits[0].match)
    assert hits[0].match.terms == {"LLM"} and hits[0].match.score == 3.0
    assert hits[1].match.terms == {"video"} and hits[1].match.score == 1.0
    assert hits[2].match.terms == {"continual pre-training"} and hits[2].match.score == 6.0


def test_identical_queries_are_evaluated_once_per_batch():
    index = TopicIndex()
    index.add_many((topic_id, '"a robot arm at rest" -leg') for topic_id in range(1000))
    batch = index.match_batch([doc_of("A robot arm at rest"), doc_of("A robot arm at rest, leg")])
    assert batch.evaluated == 1
    assert batch.count() == 1000
    assert batch.papers(7) == [0]
    assert len(list(index.match(doc_of("A robot arm at rest")))) == 1000


def test_a_batch_matches_without_walking_parse_trees(monkeypatch):
    index = TopicIndex()
    index.add_many(enumerate(["LLM", "robot arm", '"language model"', "x", '"robot arm" x']))
    forbid_tree_walks(monkeypatch)
    batch = index.match_batch([doc_of("LLMs as language models", "A robot and an arm")])
    assert [topic_id for topic_id in range(5) if batch.papers(topic_id)] == [0, 1, 2]
    monkeypatch.undo()
    assert batch.match(2, 0).terms == {"language model"} and batch.match(2, 0).score == 6.0
    assert batch.match(3, 0) is None


def test_a_paper_only_costs_the_topics_its_tokens_point_to():
    index = TopicIndex()
    index.add_many(
        (i, f'"w{i} w w w w" OR (other{i} AND "t{i} t t t t")' if i % 2 else f'"w{i} w w w w" x{i}')
        for i in range(20_000)
    )
    index.add(-1, '"robot arm a b c"')
    index.add(-2, '"robot leg a b c"')
    doc = doc_of("Robot arm a b c: w7 w w w w, w8 w w w w", "and x9")
    assert [hit.topic_id for hit in index.match(doc)] == [-1, 7]
    # Filed under their longest word: w7, w8 and robot (twice) are in the paper.
    assert index.match_batch([doc]).evaluated == 4, "only the topics filed under its tokens"


ODD_QUERIES = [
    *["( ) a", "() a", "(a OR) b", "(OR a) b", "(a OR b)", "(a OR b) -c", "a OR b OR", "OR a"],
    *["(a OR b) c", "(a b) c", "(a-b OR c) d", "x OR pre-training", "(pre-training OR x) y"],
    *["&", "", "  ", '"a b', 'a "b c" "', "((a))", "(a) OR (b)", "a AND", "-a", "a & -b"],
    *["title:(a)", 'title:"a b" c', "x:y", "“a b”", "a\x00b", "-title:a b", "c" * 301],
]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(ODD_QUERIES), max_size=12), st.lists(papers, max_size=3))
def test_loading_in_bulk_is_adding_one_by_one(texts_, docs):
    bulk, one_by_one = TopicIndex(), TopicIndex()
    bulk.add_many(enumerate(texts_))
    for i, text in enumerate(texts_):
        one_by_one.add(i, text)
    assert bulk._topics == one_by_one._topics
    assert {i for i, text in enumerate(texts_) if parsed_or_none(text)} == set(bulk._topics)
    batch_docs = [document_for(title=t, abstract=a, authors=au) for t, a, au in docs]
    assert sorted(bulk.match_batch(batch_docs).queries()) == sorted(
        one_by_one.match_batch(batch_docs).queries()
    )


def forbid_tree_walks(monkeypatch) -> None:
    def forbidden(self, doc):
        raise AssertionError("a parse tree was walked")

    for kind in (Query, Term, And, Or):
        monkeypatch.setattr(kind, "matches", forbidden)
