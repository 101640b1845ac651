"""What the ``olmp`` command prints, and how, wherever its output goes.

* Messages never wrap mid-word (``soft_wrap``): a path in a message stays whole, so it
  can be copied from a terminal or a log.
* Tables print at their natural width when the output is a file or a pipe, and as one
  block per row when a terminal is too narrow for them, instead of squeezing columns
  until their cells break apart.
* Long jobs report progress with a rich bar on a terminal and, in a log file or CI, with
  a plain line per step (:class:`ProgressLog`), including the time left.
* Python warnings become one ``olmp: warning:`` line.
"""

from __future__ import annotations

import time
import warnings
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

#: Messages, progress and warnings (stderr), and results (stdout).
console = Console(stderr=True, soft_wrap=True)
results = Console(soft_wrap=True)


def print_table(table: Table, to: Console | None = None) -> None:
    """Print ``table`` readably at any width (see the module docstring)."""
    to = to or results
    unbounded = to.options.update_width(10_000)  # the table's own width, not the console's
    width = Measurement.get(to, unbounded, table).maximum
    if width <= to.width:
        to.print(table)
    elif not to.is_terminal:  # a file has no width to respect: keep the rows whole
        narrow = to.width
        to.width = width
        try:
            to.print(table)
        finally:
            to.width = narrow
    else:
        print_records(table, to)


def print_records(table: Table, to: Console) -> None:
    """``table`` as one block per row: the first cell, then ``column: value`` lines."""
    if table.title:
        to.print(table.title, style="bold", highlight=False)
    headers = [str(column.header) for column in table.columns]
    cells = [[str(cell) for cell in column.cells] for column in table.columns]
    for row in zip(*cells, strict=True):
        to.print(row[0], style="bold", highlight=False)
        for header, value in zip(headers[1:], row[1:], strict=True):
            to.print(f"  {header}: {value}", highlight=False)


def duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``2.5 h``: a duration at the precision a person reads."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressLog:
    """Plain progress lines for output that is not a terminal (a log file, CI).

    ``step(done, detail)`` prints ``LABEL done/total: detail; 3 min elapsed, about 5 min
    left``, the time left extrapolated from the mean step so far (and capped by ``limit_s``,
    a time budget, when there is one).
    """

    def __init__(self, label: str, total: int, *, limit_s: float | None = None) -> None:
        self.label, self.total, self.limit_s = label, total, limit_s
        self.started = time.perf_counter()

    def step(self, done: int, detail: str = "", elapsed_s: float | None = None) -> None:
        elapsed = time.perf_counter() - self.started if elapsed_s is None else elapsed_s
        left = elapsed / max(done, 1) * (self.total - done)
        if self.limit_s is not None:
            left = min(left, max(self.limit_s - elapsed, 0.0))
        when = f"{duration(elapsed)} elapsed, at most about {duration(left)} left"
        text = f"{self.label} {done}/{self.total}: {detail}; {when}" if detail else when
        console.print(text, highlight=False)


class StepProgress:
    """Progress over counted steps (epochs, rounds, trials, ...): a rich bar on a terminal,
    :class:`ProgressLog` lines otherwise. A context manager; call :meth:`update`.

    ``lines``: off a terminal, print about that many lines in all (``None``: one per step).
    """

    def __init__(
        self,
        label: str,
        unit: str,
        total: int,
        *,
        limit_s: float | None = None,
        lines: int | None = None,
        transient: bool = True,
    ) -> None:
        self.terminal = console.is_terminal
        self.log = ProgressLog(unit, total, limit_s=limit_s)
        self.lines = lines
        self.bar = Progress(
            TextColumn(f"[bold]{label}[/]"),
            BarColumn(),
            TextColumn(f"{unit} {{task.completed}}/{{task.total}}"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=transient,
            disable=not self.terminal,
        )
        self.task = self.bar.add_task(label, total=total, detail="")

    def __enter__(self) -> StepProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def update(
        self,
        done: int,
        detail: str = "",
        *,
        total: int | None = None,
        elapsed_s: float | None = None,
    ) -> None:
        """``done`` steps of ``total`` (if it changed), with a short ``detail``."""
        if total is not None:
            self.log.total = total
        if self.terminal:
            self.bar.update(self.task, completed=done, total=self.log.total, detail=detail)
            return
        every = 1 if self.lines is None else max(self.log.total // self.lines, 1)
        if done == self.log.total or done % every == 0:
            self.log.step(done, detail, elapsed_s)


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A :func:`warnings.showwarning` that prints one ``olmp: warning:`` line."""
    console.print(f"[yellow]olmp: warning:[/] {escape(str(message))}", highlight=False)


def show_error(message: str, prog: str = "olmp") -> None:
    """Print ``message`` as one ``PROG: error:`` line (bad input, or a command that failed);
    ``prog`` is the command's (``olmp compress``), as argparse names it in its own errors."""
    console.print(f"[red]{escape(prog)}: error:[/] {escape(message)}", highlight=False)


def install_warning_printer() -> None:
    """Print Python warnings as :func:`show_warning` does (for the CLI)."""
    warnings.showwarning = show_warning
