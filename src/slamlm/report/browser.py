"""Open a report in headless Chromium: a screenshot and a check that its elements rendered.

The report carries a tiny script that, once laid out, records how many plots, tables and
audio players have a non-zero on-screen size in ``<body data-render='{...}'>``; Chromium's
``--dump-dom`` returns the DOM after scripts ran, so the check sees what a person would see.

Example:
    >>> # counts = render_check(Path("demo_run/report.html"))  -> {"plots": 6, "tables": 3, ...}
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

RENDER_SCRIPT = """<script>
window.addEventListener('load', function () {
  function shown(sel) {
    return Array.from(document.querySelectorAll(sel)).filter(function (e) {
      var r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; }).length;
  }
  document.body.setAttribute('data-render', JSON.stringify({
    plots: shown('svg.plot'), series: document.querySelectorAll('svg.plot .series').length,
    tables: shown('table'), audio: shown('audio'),
    audio_ok: Array.from(document.querySelectorAll('audio')).filter(function (a) {
      return a.canPlayType('audio/wav') !== ''; }).length }));
});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no Chromium found: install it (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--mute-audio", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def screenshot(html_path: Path, png_path: Path, width: int = 1200, height: int = 3000,
               timeout: int = 120) -> Path:
    """Save a PNG of the rendered page."""
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    res = _run([f"--screenshot={png_path}", f"--window-size={width},{height}",
                html_path.as_uri()], timeout)
    if not png_path.is_file():
        raise RuntimeError(f"Chromium made no screenshot of {html_path}: {res.stderr[-500:]}")
    return png_path


def render_check(html_path: Path, timeout: int = 120) -> dict[str, int]:
    """Counts of plots / tables / audio players that rendered with a non-zero size."""
    html_path = Path(html_path).resolve()
    res = _run(["--dump-dom", "--window-size=1200,3000", html_path.as_uri()], timeout)
    m = re.search(r"data-render=\"([^\"]*)\"", res.stdout)
    if not m:
        raise RuntimeError(f"render check found no result in the DOM of {html_path}: {res.stderr[-500:]}")
    return json.loads(m.group(1).replace("&quot;", '"'))
