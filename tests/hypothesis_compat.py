"""hypothesis-jsonschema 0.23.1 (schemathesis' generator of JSON bodies) drives
Hypothesis' private `many` helper with `while elements.more(): ...`; Hypothesis
6.170 turned `many` into a context manager without `more()`, so every object
schema fails with "'many' object has no attribute 'more'".

`install()` gives hypothesis-jsonschema the old helper (Hypothesis 6.155's
`more`/`reject`, on the same ConjectureData calls) and nothing else. It does
nothing when the installed Hypothesis still has `more()`. Remove this module
once the lock pins a Hypothesis that hypothesis-jsonschema supports, or a
hypothesis-jsonschema that speaks the new `many`.
"""

from __future__ import annotations

import types
from typing import Any

from hypothesis.internal.conjecture import utils as cu


class OldMany:
    """`many` as Hypothesis 6.155 had it: `while elements.more(): ...`."""

    def __init__(
        self,
        data: Any,
        min_size: int,
        max_size: float,
        average_size: float,
        *,
        forced: int | None = None,
        observe: bool = True,
    ) -> None:
        assert 0 <= min_size <= average_size <= max_size
        self.min_size = min_size
        self.max_size = max_size
        self.data = data
        self.forced_size = forced
        self.p_continue = cu._calc_p_continue(average_size - min_size, max_size - min_size)
        self.count = 0
        self.rejections = 0
        self.drawn = False
        self.force_stop = False
        self.rejected = False
        self.observe = observe

    def more(self) -> bool:
        if self.drawn and self.observe:
            self.data.stop_span()
        self.drawn = True
        self.rejected = False
        if self.observe:
            self.data.start_span(cu.ONE_FROM_MANY_LABEL)
        if self.min_size == self.max_size:
            should_continue = self.count < self.min_size
        else:
            forced: bool | None = None
            if self.force_stop:
                forced = False
            elif self.count < self.min_size:
                forced = True
            elif self.count >= self.max_size:
                forced = False
            elif self.forced_size is not None:
                forced = self.count < self.forced_size
            should_continue = self.data.draw_boolean(
                self.p_continue, forced=forced, observe=self.observe
            )
        if should_continue:
            self.count += 1
            return True
        if self.observe:
            self.data.stop_span()
        return False

    def reject(self, why: str | None = None) -> None:
        assert self.count > 0
        self.count -= 1
        self.rejections += 1
        self.rejected = True
        if self.rejections > max(3, 2 * self.count):
            if self.count < self.min_size:
                self.data.mark_invalid(why)
            else:
                self.force_stop = True


def install() -> None:
    if hasattr(cu.many, "more"):
        return
    from hypothesis_jsonschema import _from_schema

    shim = types.SimpleNamespace(**{k: getattr(cu, k) for k in dir(cu) if not k.startswith("__")})
    shim.many = OldMany
    _from_schema.cu = shim  # type: ignore[attr-defined]
