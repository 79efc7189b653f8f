"""The topic query language of issue 4: every rule and every example, as a reader meets them."""

import pytest

from digest.query import (
    MAX_QUERY_LENGTH,
    QueryError,
    document_for,
    highlight,
    parse_query,
    stem,
    tokenize,
)


def matches(query: str, title: str = "", abstract: str = "", authors=()) -> bool:
    doc = document_for(title=title, abstract=abstract, authors=authors)
    return parse_query(query).match(doc) is not None


def error(query: str) -> QueryError:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    return caught.value


# --- Normalisation and tokens -------------------------------------------------------------------


def test_it_ignores_case():
    assert matches("llm", "Scaling LLM agents")
    assert matches("LLM", "scaling llm agents")


def test_it_normalises_unicode_compatibility_forms():
    assert matches("ＬＬＭ", "LLM agents"), "full-width letters"  # noqa: RUF001
    assert matches("fine-tuning", "Eﬃcient ﬁne-tuning"), "ligatures"
    assert matches("x2", "Speed-ups of x²"), "superscripts"


def test_it_casefolds_beyond_lowercase():
    assert matches("strasse", "Die Straße")
    assert matches("Straße", "STRASSE networks")


def test_tokens_are_runs_of_letters_and_digits_and_everything_else_separates():
    assert tokenize("GPT4o, llama_3.1 (C++)") == ["gpt4o", "llama", "3", "1", "c"]
    assert matches("llama", "llama_3 results")
    assert matches("3", "llama_3 results")
    assert not matches("net", "A network"), "a word matches whole tokens, not substrings"


def test_a_word_that_splits_into_several_tokens_is_a_phrase():
    assert matches("llama3.1", "We fine-tune Llama3.1 on math")
    assert not matches("llama3.1", "Llama3 and 1 more")


def test_it_reads_letters_of_any_script():
    assert matches("author:núñez", "", authors=["Ana Núñez"])
    assert matches("東京", "東京 dataset")


# --- Hyphenated words ---------------------------------------------------------------------------


def test_a_hyphenated_word_gives_its_parts_and_their_concatenation():
    assert tokenize("pre-training") == ["pre", "training", "pretraining"]
    assert tokenize("post-pre-training") == ["post", "pre", "training", "postpretraining"]
    assert tokenize("vision-language") == ["vision", "language", "visionlanguage"]


def test_the_word_pretraining_matches_pre_training():
    assert matches("pretraining", "Continual Pre-training of LLMs")


def test_the_query_pre_training_matches_all_three_spellings():
    for title in ("Pre-training at scale", "Pretraining at scale", "Pre training at scale"):
        assert matches("pre-training", title), title


def test_a_part_of_a_hyphenated_word_is_a_word_of_its_own():
    assert matches("language", "Vision-language models")
    assert matches("visionlanguage", "Vision-language models")


def test_a_phrase_reads_through_a_hyphenated_word_either_way():
    assert matches('"pretraining methods"', "New pre-training methods")
    assert matches('"pre training methods"', "New pre-training methods")
    assert matches('"new pre-training"', "New pretraining methods")
    assert not matches('"pretraining new"', "New pre-training methods")


def test_the_concatenation_covers_only_the_whole_hyphenated_word():
    assert matches("postpretraining", "Post-pre-training alignment")
    assert not matches("pretraining", "Post-pre-training alignment")
    assert matches("pre-training", "Post-pre-training alignment")


# --- Stemming -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word, stemmed",
    [
        ("studies", "study"),  # ies → y
        ("ties", "ty"),
        ("ies", "ie"),  # too short for ies → y: then es → e
        ("aies", "aie"),  # "aies" and "eies" are not ies → y: then es → e
        ("eies", "eie"),
        ("classes", "classe"),  # es → e
        ("canoes", "canoe"),  # not es → e after a, e or o: then s → nothing
        ("trees", "tree"),
        ("caes", "cae"),
        ("models", "model"),  # s → nothing
        ("llms", "llm"),
        ("corpus", "corpus"),  # but not after u or s
        ("loss", "loss"),
        ("is", "is"),  # too short
        ("gas", "ga"),
        ("model", "model"),
    ],
)
def test_harmans_s_stemmer_exactly(word, stemmed):
    assert stem(word) == stemmed


def test_plurals_match_singulars_both_ways():
    assert matches("LLM", "Agents built on LLMs")
    assert matches("model", "Diffusion models")
    assert matches("shift", "Distribution shifts in the wild")
    assert matches("models", "A diffusion model")
    assert matches('"language models"', "A large language model")


def test_the_stemmer_is_only_harmans():
    assert not matches("process", "Gaussian processes"), "processes → processe"


# --- Words, phrases, AND, OR, exclusion, parentheses --------------------------------------------


def test_a_phrase_matches_consecutive_tokens_only():
    assert matches('"language model"', "A small language model")
    assert not matches('"language model"', "A model of language")
    assert not matches('"language model"', "A language and vision model")
    assert matches('"language model"', "Language: model of it"), "punctuation only separates"


def test_words_side_by_side_must_all_match():
    assert matches("diffusion video", "Video diffusion")
    assert not matches("diffusion video", "Image diffusion")


def test_upper_case_and_means_the_same_as_side_by_side():
    assert matches("diffusion AND video", "Video diffusion")
    assert not matches("diffusion AND video", "Image diffusion")
    assert repr(parse_query("diffusion AND video").tree) == repr(
        parse_query("diffusion video").tree
    )


def test_lower_case_and_or_are_plain_words():
    assert not matches("robot or robotic", "A robot"), "'or' is a word that must appear"
    assert matches("robot or robotic", "A robot or robotic arm")
    assert not matches("robot and arm", "A robot arm")


def test_or_matches_either():
    assert matches("robot OR robotic", "A robot")
    assert matches("robot OR robotic", "Robotic arms")
    assert not matches("robot OR robotic", "Arms")


def test_and_binds_tighter_than_or():
    assert matches("diffusion video OR audio", "Audio")
    assert matches("diffusion video OR audio", "Diffusion for video")
    assert not matches("diffusion video OR audio", "Diffusion")
    assert not matches("diffusion video OR audio", "Video")


def test_a_minus_excludes_a_word_or_a_phrase():
    assert matches("diffusion -video", "Image diffusion")
    assert not matches("diffusion -video", "Video diffusion")
    assert not matches("diffusion -video", "Diffusion", "Results on videos")
    assert matches('diffusion -"video generation"', "Diffusion for video editing")
    assert not matches('diffusion -"video generation"', "Diffusion for video generation")


def test_parentheses_group():
    assert matches("(robot OR robotic) manipulation", "Robotic manipulation")
    assert matches("(robot OR robotic) manipulation", "Manipulation by a robot")
    assert not matches("(robot OR robotic) manipulation", "Robotic arms")
    assert not matches("(robot OR robotic) manipulation", "Manipulation of markets")


# --- Fields -------------------------------------------------------------------------------------


def test_without_a_field_a_term_matches_the_title_or_the_abstract_but_not_authors():
    assert matches("hopper", "Hopper: a robot")
    assert matches("hopper", "A robot", "We build Hopper.")
    assert not matches("hopper", "A robot", "We build it.", authors=["Grace Hopper"])


def test_title_restricts_to_the_title():
    assert matches("title:LLM", "LLM agents", "Agents.")
    assert not matches("title:LLM", "Agents", "Built on LLMs.")


def test_abstract_restricts_to_the_abstract():
    assert matches("abstract:LLM", "Agents", "Built on LLMs.")
    assert not matches("abstract:LLM", "LLM agents", "Agents.")


def test_author_restricts_to_the_authors_and_phrases_stay_within_one_author():
    paper = {"title": "Compilers", "abstract": "", "authors": ["Grace Hopper", "Ada Lovelace"]}
    assert matches('author:"Grace Hopper"', **paper)
    assert matches("author:lovelace", **paper)
    assert not matches('author:"Hopper Ada"', **paper)
    assert not matches("author:compilers", **paper)


def test_field_names_ignore_case():
    assert matches("Title:LLM", "LLM agents")


def test_a_field_with_an_exclusion():
    assert matches("agents -title:survey", "LLM agents", "A survey of agents.")
    assert not matches("agents -title:survey", "A survey of LLM agents")


# --- The examples -----------------------------------------------------------------------


def test_example_continual_pre_training():
    query = '"continual pre-training"'
    assert matches(query, "Efficient Continual Pre-training by Mitigating the Stability Gap")
    assert matches(query, "", "We study continual pretraining of LLMs.")
    assert matches(query, "", "Continual pre training, revisited.")
    assert not matches(query, "Pre-training, continual learning")


def test_example_diffusion_without_video():
    assert matches("diffusion -video", "Diffusion for images")
    assert not matches("diffusion -video", "Diffusion for videos")


def test_example_robot_or_robotic_manipulation():
    assert matches("(robot OR robotic) manipulation", "Robot manipulation")
    assert not matches("(robot OR robotic) manipulation", "Robot locomotion")


def test_example_title_pre_training_and_title_language():
    query = 'title:"pre-training" title:language'
    assert matches(query, "Language model pretraining")
    assert not matches(query, "Language models", "We study pre-training.")


def test_example_author_nunez_distillation():
    query = "author:núñez distillation"
    assert matches(query, "Distillation", authors=["Ana Núñez"])
    assert matches(query, "", "Knowledge distillation.", authors=["ANA NÚÑEZ"])
    assert not matches(query, "Distillation", authors=["Ana Nunez"]), "accents are kept"
    assert not matches(query, "Distillation by Núñez", authors=["Ada Lovelace"])


# --- Errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, message, position",
    [
        ('"continual pre-training', "this quote is never closed", 0),
        ('diffusion "video', "this quote is never closed", 10),
        ("(robot OR robotic manipulation", "this parenthesis is never closed", 0),
        ("robot (OR", 'OR needs a word or a "phrase" on both sides', 7),
        ("robot) manipulation", "this parenthesis closes nothing", 5),
        ("OR robot", 'OR needs a word or a "phrase" on both sides', 0),
        ("robot OR", 'OR needs a word or a "phrase" on both sides', 6),
        ("robot OR OR arm", 'OR needs a word or a "phrase" on both sides', 6),
        ("(robot OR) arm", 'OR needs a word or a "phrase" on both sides', 7),
        ("robot AND", 'AND needs a word or a "phrase" on both sides', 6),
        ("venue:neurips", "there is no field “venue:”, only title:, abstract: and author:", 0),
        ("llm -venue:x", "there is no field “venue:”, only title:, abstract: and author:", 5),
        ("", 'the query is empty: write a word or a "quoted phrase"', 0),
        ("   ", 'the query is empty: write a word or a "quoted phrase"', 0),
        ("&& !!", 'the query is empty: write a word or a "quoted phrase"', 0),
        ("-video", 'a query cannot only exclude: add a word or a "phrase" to look for', 0),
        ('-video -"audio"', 'a query cannot only exclude: add a word or a "phrase" to look for', 0),
        (
            "diffusion OR -video",
            'a query cannot only exclude: add a word or a "phrase" to look for',
            13,
        ),
        ("()", "there is nothing between these parentheses", 0),
        ('""', "this phrase has no words in it", 0),
        ("title:", 'title: needs a word or a "phrase" right after it', 6),
        ("title: llm", 'title: needs a word or a "phrase" right after it', 6),
        ("title:(a OR b)", 'title: applies to one word or "phrase", not to parentheses', 6),
        ("llm -(a OR b)", '“-” applies to one word or "phrase", not to parentheses', 5),
        ("llm - video", 'nothing to exclude after this “-”: write -word or -"phrase"', 4),
        ("title:-survey", "put the “-” before the field, as in -title:word", 6),
    ],
)
def test_an_invalid_query_says_what_and_where(query, message, position):
    err = error(query)
    assert err.message == message
    assert err.position == position
    assert str(err) == f"{message} (at character {position + 1})"


def test_the_caret_points_under_the_offending_character():
    query = "(robot OR robotic) manipulation OR"
    assert error(query).caret(query) == f"{query}\n{' ' * 32}^"


def test_a_query_longer_than_the_limit_is_an_error():
    assert parse_query("a" * MAX_QUERY_LENGTH)
    err = error("a" * (MAX_QUERY_LENGTH + 1))
    assert err.message == f"the query is longer than {MAX_QUERY_LENGTH} characters"


def test_query_errors_are_value_errors():
    assert isinstance(error("a OR"), ValueError)


def test_curly_quotes_from_phones_quote_too():
    assert matches("“language model”", "A language model")


# --- Ranking and matched terms ------------------------------------------------------------------


def score(query: str, title: str, abstract: str = "") -> float:
    return parse_query(query).match(document_for(title=title, abstract=abstract)).score


def test_a_title_hit_ranks_above_an_abstract_hit():
    assert score("robot", "Robot arms", "Arms.") > score("robot", "Arms", "Robot arms.")


def test_a_phrase_ranks_above_a_word():
    assert score('"robot arm"', "Robot arm") > score("robot", "Robot arm")


def test_more_matched_terms_rank_higher():
    assert score("robot OR arm", "Robot arm") > score("robot OR arm", "Robot")


def test_matched_terms_are_the_words_and_phrases_as_written():
    doc = document_for(title="Continual Pre-training of LLMs", abstract="Robots.")
    found = parse_query('"continual pre-training" (LLM OR robot OR video) -survey').match(doc)
    assert found.terms == {"continual pre-training", "LLM", "robot"}


def test_a_query_that_does_not_match_gives_none():
    assert parse_query("robot").match(document_for(title="Arms", abstract="")) is None


# --- Highlighting -------------------------------------------------------------------------------


def test_highlight_marks_matched_words_in_any_spelling_and_escapes_the_rest():
    text = "Continual pre-training <b>of</b> LLMs & pretraining, then pre training."
    assert highlight(text, ["continual pre-training", "LLM", "pre-training"]) == (
        "<mark>Continual pre-training</mark> &lt;b&gt;of&lt;/b&gt; <mark>LLMs</mark> &amp; "
        "<mark>pretraining</mark>, then <mark>pre training</mark>."
    )


def test_highlight_without_terms_only_escapes():
    assert highlight("<script>x</script>", []) == "&lt;script&gt;x&lt;/script&gt;"


def test_highlight_keeps_the_original_characters():
    assert highlight("Ｌｌｍ and Straße", ["llm", "strasse"]) == (  # noqa: RUF001
        "<mark>Ｌｌｍ</mark> and <mark>Straße</mark>"  # noqa: RUF001
    )


def test_highlight_ignores_terms_that_are_not_words():
    assert highlight("a < b", ["<", ""]) == "a &lt; b"
