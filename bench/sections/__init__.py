"""The bench's sections, in the order ``make bench`` runs them: what each one measures.

A :class:`Section` is three functions: ``measure(runner, args)`` runs the measured
subprocesses (through :class:`bench.runner.Runner`) and returns a JSON-able dict, kept as
``reports/bench.json[name]``; ``render(result)`` is its table on stdout; ``memory(result)``
its rows of the peak-memory table. To add a section, write a module with those functions
and register it in :data:`SECTIONS`: ``--only``, the JSON and the report follow.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.runner import Runner
from bench.sections import growth, notebooks, serving, training


@dataclass(frozen=True)
class Section:
    """One section of the bench.

    Attributes
    ----------
    measure
        ``(runner, args) -> result``: measures, printing progress lines.
    render
        ``result -> str``: the section's table.
    memory
        ``result -> rows``: ``[label, peak RSS MB]`` of each measured process.
    files
        Keys of the result that name a file the section wrote (listed at the end).
    """

    measure: Callable[[Runner, argparse.Namespace], dict]
    render: Callable[[dict], str]
    memory: Callable[[dict], list[list[Any]]]
    files: tuple[str, ...] = ()


#: Every section by name, in the order they run (and their peak-memory rows are listed).
SECTIONS: dict[str, Section] = {
    "training": Section(training.measure, training.render, training.memory),
    "notebooks": Section(notebooks.measure, notebooks.render, notebooks.memory),
    "serving": Section(serving.measure, serving.render, serving.memory),
    "growth": Section(growth.measure, growth.render, growth.memory, files=("plot",)),
}
