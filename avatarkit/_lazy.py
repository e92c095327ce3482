"""PEP 562 lazy exports: a package's public names load on first use.

``import avatarkit`` should not pay for websockets, SSML or uploads until they
are used; the type checker sees ordinary imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str | tuple[str, str | None]], public: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``.

    ``names`` maps a public name to the module that defines it, or to
    ``(module, attribute)`` (attribute None: the module itself).
    """

    def __getattr__(name: str) -> Any:
        try:
            target = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module_name, attr = (target, name) if isinstance(target, str) else target
        module = importlib.import_module(module_name)
        value = getattr(module, attr) if attr else module
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
