"""One context-manager rule for everything that holds resources: ``with x:`` calls
``x.close()`` at the end of the block, whatever ended it."""

from __future__ import annotations

from typing import Self


class Closing:
    """``with obj:`` yields ``obj`` and closes it on the way out; subclasses define
    :meth:`close` (idempotent) when they hold something."""

    def close(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
