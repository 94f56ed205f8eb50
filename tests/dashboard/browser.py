"""A real Chromium for the dashboard tests: Debian's ``chromium`` and ``chromium-driver``,
found or installed (as root) the way tests/redis_server.py gets redis-server, and the
screenshot check (decoded by the browser: the dev extra has no imaging library)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

__all__ = ["VARIANCE_JS", "BrowserUnavailable", "find_or_install_chromium", "in_ci", "png_size"]


class BrowserUnavailable(RuntimeError):
    """No Chromium and driver could be found or installed."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _found() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.access("/usr/bin/chromedriver", os.X_OK) else None)
    return (browser, driver) if browser and driver else None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), check=False)


def find_or_install_chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths; installs the Debian packages when root and missing."""
    found = _found()
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BrowserUnavailable("chromium and chromium-driver are not installed; install them "
                                 "(apt-get install chromium chromium-driver) or run as root")
    packages = ("install", "-y", "--no-install-recommends", "chromium", "chromium-driver")
    result = _apt(*packages)
    if result.returncode != 0:
        _apt("update")
        result = _apt(*packages)
    found = _found()
    if result.returncode != 0 or not found:
        raise BrowserUnavailable("apt-get install chromium chromium-driver failed: "
                                 + (result.stderr or result.stdout)[-2000:])
    return found


VARIANCE_JS = """
const [b64, done] = arguments;
const img = new Image();
img.onload = () => {
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0, sum = 0, sq = 0;
  for (let i = 0; i < px.length; i += 4 * 7) {
    const v = (px[i] + px[i + 1] + px[i + 2]) / 3; n++; sum += v; sq += v * v;
  }
  const mean = sum / n;
  done(sq / n - mean * mean);
};
img.onerror = () => done(-1);
img.src = "data:image/png;base64," + b64;
"""
"""Run with ``execute_async_script(VARIANCE_JS, base64_png)``: the variance of the
screenshot's grey levels, decoded by the browser's own PNG decoder (near 0 for a blank
page, hundreds for one with text and charts; -1 when it is no image)."""


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, asserting that it is one."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height
