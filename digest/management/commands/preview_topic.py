import json

from django.core.management.base import BaseCommand, CommandError

from digest.query import QueryError
from digest.selectors import papers_matching_query


class Command(BaseCommand):
    help = (
        "Show the stored papers a topic query matches, newest first: one line per paper "
        "(id, title), or a JSON array with --json. An invalid query exits with status 2. "
        'A query that starts with "-" goes after "--": preview_topic -- "-video diffusion".'
    )

    def add_arguments(self, parser):
        parser.add_argument("query", help='a topic query, e.g. "continual pre-training" -video')
        parser.add_argument("--json", action="store_true", help="print a JSON array")
        parser.add_argument("--limit", type=int, help="show at most this many papers")
        parser.add_argument(
            "--days", type=int, help="only papers first seen in the last DAYS days (default: all)"
        )

    def handle(self, *args, query, json: bool, limit, days, **options):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1", returncode=2)
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1", returncode=2)
        try:
            found = papers_matching_query(query=query, days=days, limit=limit)
        except QueryError as err:
            self.stderr.write(f"Invalid query: {err.message}\n{err.caret(query)}")
            raise SystemExit(2) from err
        if json:
            self.stdout.write(_json([_as_dict(paper, match) for paper, match in found]))
            return
        for paper, _ in found:
            self.stdout.write(f"{paper.paper_id}  {' '.join(paper.title.split())}")


def _as_dict(paper, match) -> dict:
    return {
        "id": paper.paper_id,
        "title": paper.title,
        "url": paper.url,
        "first_seen_at": paper.first_seen_at.isoformat(),
        "upvotes": paper.upvotes,
        "score": match.score,
        "matched": sorted(match.terms),
    }


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
