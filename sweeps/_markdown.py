"""Text that users or their code control (exception messages, layer and parameter names, paths),
written into optuna-dashboard notes as literal text: never a link, an image or HTML.

The dashboard renders notes as Markdown. An inline code span is the one construct in which
CommonMark interprets nothing (no links, images, emphasis or raw HTML), so user text goes into a
code span whose fence is longer than any run of backticks inside it.
"""

from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")


def literal(text: object, in_table: bool = False) -> str:
    """``text`` as an inline code span that renders verbatim.

    Args:
        text: anything; ``str()`` of it is used, with line breaks folded into spaces (a code span
            is one line; a line break would end a table row or a list item).
        in_table: also escape ``|``, which a GitHub-flavoured table splits cells on even inside a
            code span.

    Returns:
        The Markdown source of the code span; ``""`` for empty text.
    """
    body = " ".join(str(text).split())
    if not body:
        return ""
    if in_table:
        body = body.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"
