#!/usr/bin/env python3
"""Open a report's HTML in headless Chromium: check that it loads without console errors and that
every figure decodes, then take a full-page screenshot.

Why a real browser: a self-contained page can still break in ways no file check sees (a
truncated data URI, a figure that does not decode, a script error). Chromium from the system
packages (``apt-get install chromium``) is the reference. Two runs:

1. ``--dump-dom`` of a temporary copy with a small probe script injected at the top of
   ``<head>``; the probe records errors (``window.onerror``, failed resource loads,
   ``console.error``) and, after ``load``, writes the state of every ``<img>`` and the page height
   into the DOM that Chromium dumps. The report itself carries no script.
2. ``--screenshot`` of the report itself, with the window as tall as the page.

Usage::

    python benchmarks/render_report.py reports/paper/report.html [--screenshot out.png] [--json out.json]

Exit status 0 when the page has no errors and every figure decoded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)
WIDTH = 1280
MAX_HEIGHT = 30000

PROBE = """<script id="render-probe">
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target || {};
    errors.push(t.tagName ? ('failed to load ' + t.tagName + ' ' + String(t.src || t.href).slice(0, 80))
                          : String(e.message));
  }, true);
  var original = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
  window.addEventListener('load', function () {
    var imgs = Array.prototype.slice.call(document.images).map(function (img) {
      return {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
              shown_height: img.getBoundingClientRect().height};
    });
    var pre = document.createElement('pre');
    pre.id = 'render-check';
    pre.textContent = JSON.stringify({errors: errors, images: imgs, height: document.documentElement.scrollHeight});
    document.body.appendChild(pre);
  });
})();
</script>"""


@dataclass
class RenderCheck:
    """What Chromium made of the page."""

    html: str
    images: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # console/JS errors Chromium logged on stderr
    page_height: int = 0
    screenshot: str | None = None
    seconds: float = 0.0

    @property
    def broken_images(self) -> list[str]:
        return [i["alt"] for i in self.images if not (i["complete"] and i["width"] > 0 and i["shown_height"] > 0)]

    @property
    def ok(self) -> bool:
        return bool(self.images) and not self.broken_images and not self.errors and not self.console


def _chromium(args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _console_errors(stderr: str) -> list[str]:
    """Console messages and uncaught errors that Chromium logged for the page itself."""
    return [
        line.strip()
        for line in stderr.splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or ":ERROR:" in line or "error" in line.lower())
    ]


def render(html_path: str | Path, screenshot: str | Path | None = None, *, timeout: float = 120.0) -> RenderCheck:
    """Check ``html_path`` in headless Chromium (see the module docstring); optionally screenshot it."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    html_path = Path(html_path).resolve()
    start = time.perf_counter()
    check = RenderCheck(html=str(html_path))
    with tempfile.TemporaryDirectory(prefix="render-report-") as tmp:
        tmp = Path(tmp)
        probe_page = tmp / "probe.html"
        text = html_path.read_text(encoding="utf-8")
        probe_page.write_text(re.sub(r"<head>", "<head>\n" + PROBE, text, count=1), encoding="utf-8")
        done = _chromium(
            ["--virtual-time-budget=10000", "--dump-dom", probe_page.as_uri()], tmp / "profile-dom", timeout
        )
        match = re.search(r'<pre id="render-check">(.*?)</pre>', done.stdout, re.S)
        if not match:
            check.errors.append(
                f"the page did not finish loading (chromium exit {done.returncode}): {done.stderr.strip()[-300:]}"
            )
        else:
            data = json.loads(
                match.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
            )
            check.images, check.errors, check.page_height = data["images"], data["errors"], int(data["height"])
        check.console = _console_errors(done.stderr)
        if screenshot is not None:
            screenshot = Path(screenshot).resolve()
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            height = min(max(check.page_height, 800), MAX_HEIGHT)
            shot = _chromium(
                [f"--window-size={WIDTH},{height}", f"--screenshot={screenshot}", html_path.as_uri()],
                tmp / "profile-shot",
                timeout,
            )
            check.console += _console_errors(shot.stderr)
            if not screenshot.is_file():
                check.errors.append(f"no screenshot written (chromium exit {shot.returncode})")
            else:
                check.screenshot = str(screenshot)
    check.seconds = time.perf_counter() - start
    return check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--screenshot", type=Path, default=None, help="PNG to write (default: none)")
    parser.add_argument("--json", type=Path, default=None, help="write the check as JSON here")
    args = parser.parse_args()
    check = render(args.html, args.screenshot)
    summary = {**asdict(check), "broken_images": check.broken_images, "ok": check.ok}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(
        f"{check.html}: {len(check.images)} images, {len(check.broken_images)} broken, "
        f"{len(check.errors) + len(check.console)} errors, page height {check.page_height} px, "
        f"{check.seconds:.1f} s" + (f", screenshot {check.screenshot}" if check.screenshot else "")
    )
    for err in check.errors + check.console:
        print(f"  error: {err}")
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
