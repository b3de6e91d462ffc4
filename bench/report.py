"""What the bench shows and keeps: plain-text tables, the machine line, the peak-memory table,
the final summary on stdout and the JSON file.

Sections render their own tables with :func:`table`; :func:`summary` puts the whole report
together from the JSON-able result dict alone, so it can be rendered again from
``reports/bench.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.sections import Section

ROOT = Path(__file__).resolve().parents[1]


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: ``-`` for None, strings and ints as they are, other numbers to ``digits``
    significant digits (thousands separated, no decimals, from 1000 on)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{max(0, digits - 1 - math.floor(math.log10(magnitude)))}f}"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A titled plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(header, widths, strict=True)))
    out = [title, line, "-" * len(line)]
    for r in cells:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(out)


def succeeded(report: Mapping[str, Any], name: str) -> bool:
    """Whether section ``name`` ran and did not fail."""
    return isinstance(report.get(name), dict) and "error" not in report[name]


def memory_table(report: Mapping[str, Any], sections: Mapping[str, Section]) -> str:
    """Every measured process's peak RSS in one table, section by section."""
    rows: list[Sequence[Any]] = []
    for name, section in sections.items():
        if succeeded(report, name):
            rows += section.memory(report[name])
    return table("4. Peak memory (RSS of each measured process, incl. waited-for children)",
                 ["process", "peak RSS MB"], rows)


def machine_info() -> dict:
    """The library's :func:`lastfm_rec.reports.machine_info` plus memory, commit and load."""
    from lastfm_rec import reports

    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024**2
                break
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    return {
        **reports.machine_info(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "memory_gb": mem_gb, "git_commit": commit, "load_average_start": os.getloadavg(),
    }


def machine_line(m: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """One line on the machine, the library versions, the load and the threads."""
    from lastfm_rec import reports

    return (f"Machine: {reports.describe_machine(m)} ({m['cores_available']} "
            f"available), {m['memory_gb']:.1f} GB; Python {m['python']}, numpy {m['numpy']}, "
            f"scipy {m['scipy']}, pandas {m['pandas']}, TensorFlow {m['tensorflow']}, "
            f"implicit {m['implicit']}; load average at start "
            f"{', '.join(f'{x:.2f}' for x in m['load_average_start'])}; "
            f"threads per process {settings['threads'] or 'library default'}")


def summary(report: Mapping[str, Any], sections: Mapping[str, Section], out: Path) -> str:
    """The text printed at the end of a run: machine, each section's table in the order
    they ran, the peak-memory table, the files written and the total time."""
    machine, settings = report["machine"], report["settings"]
    parts = ["=" * 100, machine_line(machine, settings),
             "load average at end "
             f"{', '.join(f'{x:.2f}' for x in machine['load_average_end'])}\n"]
    parts += [sections[name].render(report[name]) + "\n"
              for name in settings["sections"] if succeeded(report, name)]
    parts.append(memory_table(report, sections) + "\n")
    for name in settings["sections"]:
        if succeeded(report, name):
            parts += [f"{name} {key}: {report[name][key]}" for key in sections[name].files]
    failed = report["failed"]
    parts += [f"results: {out}",
              f"total {report['total_seconds'] / 60:.1f} min"
              + (f"; FAILED sections: {', '.join(failed)}" if failed else "")]
    return "\n".join(parts)


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as JSON through a temporary file and a rename, making the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=indent) + "\n")
    os.replace(tmp, path)
