"""The one HTTP boundary of the scraper: every fetch goes through `fetch`."""

from dataclasses import dataclass

import httpx
from django.conf import settings

MAX_BODY_BYTES = 20 * 1024 * 1024


class FetchError(Exception):
    """A fetch that failed; `permanent` says whether retrying later can help."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Response:
    url: str
    status_code: int
    content_type: str
    body: bytes
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304


def user_agent() -> str:
    return f"Paperboy/0.1 (+{settings.PAPERBOY_CONTACT_URL})"


def new_client() -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(20.0, connect=10.0),
        follow_redirects=True,
        max_redirects=5,
        headers={"User-Agent": user_agent(), "Accept-Encoding": "gzip, deflate, br"},
    )


def fetch(url: str, *, etag: str = "", last_modified: str = "") -> Response:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with new_client() as client, client.stream("GET", url, headers=headers) as response:
            if response.status_code >= 400:
                raise FetchError(
                    f"HTTP {response.status_code} from {url}",
                    permanent=400 <= response.status_code < 500 and response.status_code != 429,
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise FetchError(f"body larger than {MAX_BODY_BYTES} bytes", permanent=True)
                chunks.append(chunk)
            return Response(
                url=str(response.url),
                status_code=response.status_code,
                content_type=response.headers.get("content-type", ""),
                body=b"".join(chunks),
                etag=response.headers.get("etag", ""),
                last_modified=response.headers.get("last-modified", ""),
            )
    except httpx.TooManyRedirects as err:
        raise FetchError(f"too many redirects from {url}", permanent=True) from err
    except httpx.TimeoutException as err:
        raise FetchError(f"timed out fetching {url}") from err
    except httpx.InvalidURL as err:
        raise FetchError(f"invalid URL {url!r}: {err}", permanent=True) from err
    except httpx.UnsupportedProtocol as err:
        raise FetchError(f"unsupported URL {url!r}: use http or https", permanent=True) from err
    except httpx.HTTPError as err:
        raise FetchError(f"could not fetch {url}: {err}") from err
