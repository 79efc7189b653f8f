"""Realistic benchmark data: papers and topics drawn from the vocabulary of real pages (the
bundled sample, plus ../shared/fixtures when it is beside the clone)."""

import itertools
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "scraper" / "sample" / "daily_papers.json"
SHARED = ROOT.parent / "shared" / "fixtures"
WORD = re.compile(r"[A-Za-z][A-Za-z\-]{2,}")
STOP = frozenset(
    """the and for with from that this are our which their these into using based can has have not but its than also such more show both while when where how what over under between via each new two one three use used able well most other been being they them across https http github com www within without however further first propose proposed results approach method methods paper work existing significantly achieve achieves""".split()  # noqa: SIM905
)


def real_texts() -> list[tuple[str, str]]:
    """(title, abstract) pairs from the sample and the recorded Hugging Face responses."""
    files = (
        [SAMPLE, *sorted(SHARED.glob("hf_daily_papers_*.json"))] if SHARED.is_dir() else [SAMPLE]
    )
    texts = []
    for path in files:
        for item in json.loads(path.read_text()):
            paper = item.get("paper", item)
            texts.append((paper.get("title", ""), paper.get("summary", "")))
    return texts


def vocabulary(texts) -> tuple[list[str], list[str]]:
    """Words (by frequency, stop words out) and two-word phrases seen in the texts."""
    counts: dict[str, int] = {}
    phrases: dict[str, int] = {}
    for title, abstract in texts:
        words = [w.lower() for w in WORD.findall(f"{title} {abstract}")]
        for w in words:
            if w not in STOP:
                counts[w] = counts.get(w, 0) + 1
        for a, b in itertools.pairwise(words):
            if a not in STOP and b not in STOP:
                phrases[f"{a} {b}"] = phrases.get(f"{a} {b}", 0) + 1
    words = sorted(counts, key=counts.get, reverse=True)
    return words, [p for p, n in sorted(phrases.items(), key=lambda kv: -kv[1]) if n > 1]


def make_papers(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """n (title, abstract) pairs: the real ones first, then recombinations of their
    sentences, so word and phrase statistics stay those of real papers."""
    texts = real_texts()
    sentences = [s for _, a in texts for s in re.split(r"(?<=\.)\s+", a) if len(s) > 40]
    titles = [t for t, _ in texts]
    out = list(texts[:n])
    while len(out) < n:
        title = rng.choice(titles)
        words = title.split()
        rng.shuffle(words)
        out.append((" ".join(words), " ".join(rng.sample(sentences, 6))))
    return out


def make_topics(n: int, rng: random.Random) -> list[str]:
    """The mix of the matching benchmark: 1-4 words, ~30% phrases, 10% OR, 5% exclusions,
    5% field-scoped."""
    words, phrases = vocabulary(real_texts())
    common, phrases = words[:3000], phrases[:2000] or words[:100]

    def word():
        return common[int(len(common) * rng.random() ** 2)]  # frequent words more often

    topics = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.30:
            parts = [f'"{rng.choice(phrases)}"'] + [word() for _ in range(rng.randint(0, 1))]
        else:
            parts = list(dict.fromkeys(word() for _ in range(rng.randint(1, 3))))
        roll = rng.random()
        if roll < 0.10:
            parts = [f"({parts[0]} OR {word()})", *parts[1:]]
        elif roll < 0.15:
            parts.append(f"-{word()}")
        elif roll < 0.20:
            parts[0] = f"title:{parts[0]}"
        topics.append(" ".join(parts))
    return topics
