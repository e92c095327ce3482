"""Jupyter's rich display for produced media: an inline player, the bytes embedded.

IPython asks an object for ``_repr_mimebundle_``; nothing here imports IPython.
"""

from __future__ import annotations

import base64
import html
from typing import Final

__all__ = ["EMBED_LIMIT", "media_bundle"]

#: Larger media is not embedded: the notebook file would carry every byte, base64'd.
EMBED_LIMIT: Final = 32 * 1024 * 1024


def media_bundle(
    tag: str, data: bytes | None, mime: str, text: str, *, missing: str
) -> dict[str, str]:
    """``{"text/plain": text, "text/html": <tag controls src="data:…">}``.

    Without bytes (``missing`` says why) or past :data:`EMBED_LIMIT`, the HTML
    explains instead of embedding.  Remote URLs are never put in the page: a
    presigned URL's query is a credential, and the notebook file keeps outputs.
    """
    if data is None:
        body = f"<code>{html.escape(text)}</code>: {html.escape(missing)}"
    elif len(data) > EMBED_LIMIT:
        body = (
            f"<code>{html.escape(text)}</code>: {len(data):,} bytes, too large to embed "
            f"(over {EMBED_LIMIT >> 20} MiB); save it and open the file"
        )
    else:
        encoded = base64.b64encode(data).decode("ascii")
        body = f'<{tag} controls src="data:{mime};base64,{encoded}"></{tag}>'
    return {"text/plain": text, "text/html": body}
