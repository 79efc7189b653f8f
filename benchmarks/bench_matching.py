"""Matching benchmark (issue 4): a million topics against a thousand papers, on one core.

Topics are a realistic mix drawn from the vocabulary of the recorded pages (the bundled sample,
plus ../shared/fixtures when it is beside the clone): 1 to 4 words, about 30% with a phrase,
10% with OR, 5% with an exclusion, 5% field-scoped. Papers are the recorded ones, then new ones
recombined from their sentences, so word statistics stay those of real papers.

Measured: the time to compile the topics into the index, the time to match every paper (read
into documents, then matched in one batch: each matching distinct query with the bitset of its
papers, which is every (topic, paper) match), the peak memory of the process, and the speed-up
over the naive loop (every topic evaluated on every paper) timed on a sample of the topics in
the same run, whose results must equal the index's. The last line printed is one JSON object.

    .venv/bin/python benchmarks/bench_matching.py [--topics 1000000] [--papers 1000]
"""

import argparse
import contextlib
import gc
import itertools
import json
import random
import re
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.matching import TopicIndex  # noqa: E402
from digest.query import QueryError, document_for, parse_query, tokenize  # noqa: E402

MAX_SHARE = 0.10
SAMPLE = ROOT / "scraper" / "sample" / "daily_papers.json"
SHARED = ROOT.parent / "shared" / "fixtures"
WORD = re.compile(r"[^\W\d_][\w-]*[^\W_]")
STOP = set(
    re.findall(
        r"\w+",
        """a about above across after again against all almost along already also although always
    among an and another any are around as at be because been before being below between both
    but by can could did do does doing done down during each either enough especially even ever
    every few for from further had has have having here how however if in into is it its itself
    just least less like made make makes many may more most much must neither no nor not now of
    off often on once one only onto or other others our out over own per rather same several
    should show shows shown since so some such than that the their them themselves then there
    these they this those through thus to too toward towards two three under until up upon us
    use used uses using very via was we well were what when where whether which while who whose
    why will with within without would yet you your new first second propose proposed present
    paper work study approach method methods results result show achieve achieves based across
    existing significantly further https http github com www""",
    )
)


def recorded_papers() -> list[dict]:
    """The recorded Hugging Face papers: title, abstract, authors, keywords (deduplicated)."""
    files = [SAMPLE]
    if SHARED.is_dir():
        files += sorted(SHARED.glob("hf_daily_papers_*.json"))
    papers: dict[str, dict] = {}
    for path in files:
        for item in json.loads(path.read_text(encoding="utf-8")):
            paper = item.get("paper", item)
            key = paper.get("id") or paper.get("title", "")
            papers[key] = {
                "title": " ".join(paper.get("title", "").split()),
                "abstract": " ".join(paper.get("summary", "").split()),
                "authors": [a.get("name", "") for a in paper.get("authors", []) if a.get("name")],
                "keywords": paper.get("ai_keywords") or [],
            }
    return list(papers.values())


def vocabulary(papers: list[dict]) -> tuple[list[str], list[str], list[str]]:
    """Words seen in at least two papers, phrases (keywords and repeated word pairs), and
    author surnames."""
    df: dict[str, int] = {}  # by token, as the matcher sees words
    spellings: set[str] = set()
    pairs: dict[str, int] = {}
    for paper in papers:
        text = f"{paper['title']} {paper['abstract']}"
        for token in set(tokenize(text)):
            df[token] = df.get(token, 0) + 1
        words = [w.lower() for w in WORD.findall(text)]
        spellings.update(w for w in words if w not in STOP and len(w) > 2)
        for a, b in itertools.pairwise(words):
            if a not in STOP and b not in STOP and len(a) > 2 and len(b) > 2:
                pairs[f"{a} {b}"] = pairs.get(f"{a} {b}", 0) + 1
    # A word in a large share of papers ("model", "training") is nobody's topic on its own: a
    # digest of a good part of everything. Phrases keep such words ("reinforcement learning").
    common = {t for t, n in df.items() if n > MAX_SHARE * len(papers)}
    words = sorted(w for w in spellings if not common & set(tokenize(w)))
    keywords = {k.lower() for p in papers for k in p["keywords"] if " " in k.strip()}
    phrases = sorted(keywords | {p for p, n in pairs.items() if n >= 2})
    surnames = sorted({a.split()[-1] for p in papers for a in p["authors"] if a.split()})
    return words, phrases, surnames


def make_papers(recorded: list[dict], n: int, rng: random.Random) -> list[dict]:
    """n papers: the recorded ones, then variations of them. A paper is about one thing, so a
    variation keeps most sentences of one recorded paper, adds one from another, and mixes
    their titles and authors: word frequencies across papers stay those of the recorded ones."""
    split = [
        [s for s in re.split(r"(?<=[.!?])\s+", p["abstract"]) if s] or [p["abstract"]]
        for p in recorded
    ]
    out = [dict(p) for p in recorded[:n]]
    while len(out) < n:
        i, j = rng.sample(range(len(recorded)), 2)
        base, other = recorded[i], recorded[j]
        sentences = [s for s in split[i] if rng.random() < 0.8] + [rng.choice(split[j])]
        rng.shuffle(sentences)
        ta, tb = base["title"].split(), other["title"].split()
        title = " ".join(ta[: max(1, 2 * len(ta) // 3)] + tb[2 * len(tb) // 3 :])
        authors = base["authors"][:4] + other["authors"][:2]
        out.append({"title": title, "abstract": " ".join(sentences), "authors": authors})
    return out


def make_topics(recorded: list[dict], n: int, rng: random.Random) -> list[str]:
    """The issue's mix: 1-4 words, ~30% with a phrase, 10% OR, 5% exclusion, 5% field."""
    words, phrases, surnames = vocabulary(recorded)
    topics = []
    for _ in range(n):
        size = rng.choices((1, 2, 3, 4), weights=(35, 35, 20, 10))[0]
        parts: list[str] = []
        if rng.random() < 0.30:
            phrase = rng.choice(phrases)
            parts.append(f'"{phrase}"')
            size -= len(phrase.split())
        while size > 0 or not parts:
            parts.append(rng.choice(words))
            size -= 1
        rng.shuffle(parts)
        roll = rng.random()
        if roll < 0.10:
            alternative = rng.choice(words)
            if len(parts) == 1:
                parts = [parts[0], "OR", alternative]
            else:
                parts[0] = f"({parts[0]} OR {alternative})"
        elif roll < 0.15:
            parts.append(f"-{rng.choice(words)}")
        elif roll < 0.20:
            field = rng.choice(("title", "abstract", "author"))
            if field == "author":
                parts.append(f"author:{rng.choice(surnames)}")
            else:
                parts[0] = f"{field}:{parts[0]}"
        topics.append(" ".join(parts))
    return topics


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=int, default=1_000_000)
    parser.add_argument("--papers", type=int, default=1_000)
    parser.add_argument(
        "--sample", type=int, default=2_000, help="topics in the naive loop's sample"
    )
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    recorded = recorded_papers()
    topics = make_topics(recorded, args.topics, rng)
    papers = make_papers(recorded, args.papers, rng)
    print(
        f"{len(topics):,} topics ({len(set(topics)):,} distinct), {len(papers):,} papers "
        f"from {len(recorded)} recorded ones; for example: {' | '.join(topics[:6])}",
        file=sys.stderr,
    )
    gc.collect()
    gc.freeze()  # the workload lives for the whole run; keep the collector off it

    started = time.perf_counter()
    index = TopicIndex()
    index.add_many(enumerate(topics))
    compiled = time.perf_counter()
    docs = [
        document_for(title=p["title"], abstract=p["abstract"], authors=p["authors"]) for p in papers
    ]
    # Every matching distinct query once, with the ids of the topics that follow it and the
    # bitset of the papers it matches: every (topic, paper) match, in a compact form.
    batch = index.match_batch(docs)
    matches = batch.count()
    finished = time.perf_counter()
    seconds = finished - started
    compile_seconds, match_seconds = compiled - started, finished - compiled
    print(
        f"index: {len(index):,} topics compiled in {compile_seconds:.2f} s; "
        f"{len(docs):,} papers matched in {match_seconds:.2f} s: "
        f"{matches:,} (topic, paper) matches",
        file=sys.stderr,
    )

    # The naive loop on a sample of the topics, against every paper. Its documents come
    # complete (positions and n-grams, which the index does not need, worked out beforehand),
    # so that the loop times only the evaluations.
    for doc in docs:
        doc.text_ngrams  # noqa: B018
    sample_ids = rng.sample(range(len(topics)), min(args.sample, len(topics)))
    started = time.perf_counter()
    queries = {}
    for topic_id in sample_ids:
        with contextlib.suppress(QueryError):
            queries[topic_id] = parse_query(topics[topic_id])
    naive: dict[int, set[int]] = {}
    for paper_id, doc in enumerate(docs):
        naive[paper_id] = {t for t, q in queries.items() if q.match(doc) is not None}
    naive_seconds = (time.perf_counter() - started) * len(topics) / len(sample_ids)
    indexed: dict[int, set[int]] = {paper_id: set() for paper_id in naive}
    for topic_id in sample_ids:
        for paper_id in batch.papers(topic_id):
            indexed[paper_id].add(topic_id)
    agrees = indexed == naive
    print(
        f"naive loop: {len(sample_ids):,} topics x {len(docs):,} papers, extrapolated to "
        f"{naive_seconds:,.0f} s for all topics",
        file=sys.stderr,
    )
    result = {
        "benchmark": "matching",
        "topics": len(topics),
        "papers": len(docs),
        "seconds": round(seconds, 2),
        "peak_mb": round(peak_mb(), 1),
        "speedup_vs_naive": round(naive_seconds / seconds, 1),
        "agrees_with_naive": agrees,
        "compile_seconds": round(compile_seconds, 2),
        "match_seconds": round(match_seconds, 2),
        "matches": matches,
    }
    print(json.dumps(result))
    assert agrees, "the index disagrees with the naive loop on the sample"
    return result


if __name__ == "__main__":
    main()
