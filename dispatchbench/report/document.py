"""A report as typed blocks (headings, paragraphs, tables, figures), rendered to Markdown and to
one self-contained, escaped HTML page; and the one place a report folder is made.

Every report (``dispatchbench report``, ``reproduce scaling``) is built from these blocks
rather than from Markdown text fed through a Markdown renderer: a renderer passes raw HTML
through, so a problem name, a state label, a solver spec or a plugin's error message holding
``<script>`` would become live in report.html. Here each piece of text is escaped once, by the
renderer of its format.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.model.errors import InputError

Inline = tuple[str, str]  # (style, text): style is "", "code" or "strong"


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    parts: list[Inline]


@dataclass
class Table:
    frame: pd.DataFrame
    digits: int = 4
    numeric: tuple[str, ...] = ()  # columns right-aligned


@dataclass
class Figure:
    path: Path
    caption: str


Block = Heading | Para | Table | Figure


def plain(text: Any) -> Inline:
    return ("", str(text))


def code(text: Any) -> Inline:
    return ("code", str(text))


def strong(text: Any) -> Inline:
    return ("strong", str(text))


def cell_text(v: Any, digits: int) -> str:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "n/a"
        if math.isfinite(v) and (abs(v) >= 1000 or (v.is_integer() and v)):
            return f"{v:,.0f}"  # counts and large means: decimals there are noise, not precision
        return f"{v:,.{digits}g}" if abs(v) < 1e-3 and v else f"{v:,.{digits}f}"
    return str(v)


def _md_escape(text: str) -> str:
    """Markdown text that shows ``text`` literally: no raw HTML, no table breaks, one line."""
    text = re.sub(r"\s+", " ", str(text))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _md_inline(parts: list[Inline]) -> str:
    out = []
    for style, text in parts:
        if style == "code" and not any(ch in text for ch in "<>&"):
            out.append("`" + re.sub(r"\s+", " ", text).replace("`", "'") + "`")
        elif style == "code":  # a code span shows "&lt;" literally: markup-like text goes out escaped
            out.append(_md_escape(text))
        elif style == "strong":
            out.append(f"**{_md_escape(text)}**")
        else:
            out.append(_md_escape(text))
    return "".join(out)


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + _md_escape(b.text), ""]
        elif isinstance(b, Para):
            lines += [_md_inline(b.parts), ""]
        elif isinstance(b, Table):
            if len(b.frame):
                shown = b.frame.map(lambda v: _md_escape(cell_text(v, b.digits)))
                shown.columns = [_md_escape(c) for c in shown.columns]
                lines += [shown.to_markdown(index=False, disable_numparse=True), ""]
            else:
                lines += ["(none)", ""]
        elif isinstance(b, Figure):
            lines += [f"![{_md_escape(b.caption.split(':')[0])}]({b.path.name})", "", f"*{_md_escape(b.caption)}*", ""]
    return "\n".join(lines)


def _html_inline(parts: list[Inline]) -> str:
    out = []
    for style, text in parts:
        e = html.escape(text, quote=True)
        out.append(f"<{style}>{e}</{style}>" if style else e)
    return "".join(out)


def to_html(blocks: list[Block], *, title: str) -> str:
    """One self-contained page; every text escaped, figures inlined as data URIs."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_html_inline(b.parts)}</p>")
        elif isinstance(b, Table):
            if not len(b.frame):
                body.append("<p>(none)</p>")
                continue
            cols = list(b.frame.columns)
            align = ["" if c not in b.numeric else ' class="num"' for c in cols]
            head = "".join(f"<th{a}>{html.escape(str(c))}</th>" for c, a in zip(cols, align))
            rows = "\n".join(
                "<tr>"
                + "".join(f"<td{a}>{html.escape(cell_text(v, b.digits))}</td>" for v, a in zip(row, align))
                + "</tr>"
                for row in b.frame.itertuples(index=False)
            )
            body.append(
                f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n'
                f"</tbody>\n</table></div>"
            )
        elif isinstance(b, Figure):
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            alt = html.escape(b.caption.split(":")[0], quote=True)
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
                f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
            )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


REPORT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def check_report_name(name: str) -> None:
    """Refuse a report name that is not one plain folder name (before any work is done)."""
    if not REPORT_NAME.fullmatch(name) or ".." in name:
        raise InputError(
            "--name",
            repr(name),
            "is not a plain folder name",
            "use letters, digits, -, _ and . (not first), no '/' and no '..'",
        )


def report_dir(out_root: str | Path, name: str) -> Path:
    """``out_root/name``, refusing any name that is not one plain folder name.

    The report deletes its old ``fig*.png`` before writing: with ``--name ../../x`` or an
    absolute path it would delete and write wherever the name pointed.
    """
    check_report_name(name)
    root = Path(out_root)
    out = root / name
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(
            str(root),
            name,
            "exists and is not a report folder (a file or a link)",
            "choose another --name or remove it",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            str(root), name, f"cannot be created ({exc.strerror})", "give --reports a writable folder"
        ) from None
    return out


# Fits a 1366 px laptop screen: the body is at most 1180 px, long cells (specs, paths, reasons)
# wrap anywhere instead of widening their table, and a table that still cannot fit scrolls in
# its own box rather than the page.
_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; overflow-wrap: anywhere; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #eee; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }
th { background: #f4f4f4; }
figure { margin: 1em 0; }
figcaption { font-style: italic; font-size: 0.92em; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0 0.2em; }
code { background: #f4f4f4; padding: 0 3px; overflow-wrap: anywhere; }
"""
