"""A bounded memo keyed by the identity of its first argument.

Model descriptions, configs and cached spec tuples are never mutated once built, and a sweep asks
for the same object thousands of times; hashing them (dicts cannot be hashed, frozen dataclasses
hash every field) costs more than the work saved. ``by_identity`` keys on ``id(obj)`` plus the
remaining (hashable) arguments and keeps ``obj`` in the entry, so an id is never reused while its
entry lives.
"""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable, TypeVar

__all__ = ["by_identity"]

F = TypeVar("F", bound=Callable[..., Any])


def by_identity(maxsize: int = 256) -> Callable[[F], F]:
    """Memoise ``fn(obj, *args)`` on ``(id(obj), *args)``; the memo empties itself at ``maxsize`` entries."""

    def decorate(fn: F) -> F:
        memo: dict[tuple, tuple[Any, Any]] = {}

        @wraps(fn)
        def wrapper(obj: Any, *args: Any) -> Any:
            key = (id(obj),) + args
            hit = memo.get(key)
            if hit is not None and hit[0] is obj:
                return hit[1]
            value = fn(obj, *args)
            if len(memo) >= maxsize:
                memo.clear()
            memo[key] = (obj, value)
            return value

        wrapper.cache_clear = memo.clear  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
