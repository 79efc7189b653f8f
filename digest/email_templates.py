"""Email templates with their CSS inlined once, when the template is loaded.

Mail clients that drop <style> (older Gmail apps, Outlook) need a style attribute on every
element. Inlining each message costs as much as rendering it, so the inlining happens to the
templates instead: every emails/*.html template is inlined (css-inline) with the stylesheet of
emails/base.html when Django loads it, and Django's cached loader keeps the result. base.html
keeps its <style> for the media queries (dark mode, small screens). Email templates therefore
write their tags literally; Django tags sit between elements or inside attribute values, never
inside a tag's name or around half an element.

The few tags code adds at run time (a highlight's <mark>, a topic's <code>) take their
inlined start tag from `styled_tag`."""

import re
from functools import cache

import css_inline
from django.template import TemplateDoesNotExist
from django.template.loaders.filesystem import Loader as FilesystemLoader

BASE = "emails/base.html"
_STYLE = re.compile(r"<style>(.*?)</style>", re.S)


class Loader(FilesystemLoader):
    """The filesystem loader, inlining the CSS of the email templates it reads."""

    def get_contents(self, origin):
        contents = super().get_contents(origin)
        name = origin.template_name or ""
        if not (name.startswith("emails/") and name.endswith(".html")):
            return contents
        if name == BASE:
            return css_inline.CSSInliner(keep_style_tags=True).inline(contents)
        return css_inline.inline_fragment(contents, self._stylesheet())

    def _stylesheet(self) -> str:
        for origin in self.get_template_sources(BASE):
            try:
                return stylesheet_of(super().get_contents(origin))
            except TemplateDoesNotExist:
                continue
        raise TemplateDoesNotExist(BASE)


def stylesheet_of(base: str) -> str:
    found = _STYLE.search(base)
    return found.group(1) if found else ""


@cache
def styled_tag(tag: str) -> str:
    """The start tag `<tag>` with the email stylesheet's inline style, e.g. '<mark style=..>'."""
    from django.template.loader import get_template

    # The base template as loaded is inlined already; its source still has the stylesheet.
    source = get_template(BASE).template.source
    inlined = css_inline.inline_fragment(f"<{tag}></{tag}>", stylesheet_of(source))
    return inlined[: inlined.index(">") + 1]
