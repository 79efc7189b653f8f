"""reverse() for the links in every digest, worked out once per URL name.

Django's reverse() matches the arguments against the URL pattern on every call (tens of
microseconds); a digest carries half a dozen links, so a run of 100,000 digests spent
seconds on it. The URLs in emails take `str` and `int` arguments only, so each name is
reversed once with placeholder numbers (which either converter accepts) and each later call
puts its arguments, quoted as reverse() quotes them, where the placeholders were."""

import functools
import re
from urllib.parse import quote

from django.conf import settings
from django.core.signals import setting_changed
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.http import RFC3986_SUBDELIMS

_PLACEHOLDER = 7_304_981_265_000  # + the argument's position
_SAFE = RFC3986_SUBDELIMS + "/~:@"


def cached_reverse(name: str, *args: str | int) -> str:
    """reverse(name, args=args) for `str` and `int` URL arguments."""
    pieces = _pieces(name, len(args), get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    out = [pieces[0]]
    for arg, literal in zip(args, pieces[1:], strict=True):
        out.append(str(arg) if isinstance(arg, int) else quote(arg, safe=_SAFE))
        out.append(literal)
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _pieces(name: str, count: int, _prefix: str, _urlconf: str) -> tuple[str, ...]:
    """The URL's literal text around its arguments."""
    placeholders = [str(_PLACEHOLDER + i) for i in range(count)]
    url = reverse(name, args=placeholders)
    pieces = re.split("|".join(placeholders), url) if placeholders else [url]
    if len(pieces) != count + 1:
        raise ValueError(f"URL {name!r} does not take {count} plain argument(s): {url}")
    return tuple(pieces)


def _forget(*, setting, **kwargs):
    if setting == "ROOT_URLCONF":
        _pieces.cache_clear()


setting_changed.connect(_forget)
