"""Copy the browser libraries from ``node_modules`` into ``dashboard/static/vendor``.

Why: supervision networks are often cut off from the internet (docs/ARCHITECTURE.md §8), so every script,
stylesheet and image a page loads is served by the platform itself under ``/static/vendor``.
The libraries come from the npm registry, pinned by ``package.json`` / ``package-lock.json``
at the repository root; ``node_modules`` and ``static/vendor`` are build output (gitignored).

Run ``python -m dashboard.build_assets`` (``make assets``). When ``node_modules`` is missing
or older than ``package-lock.json`` it first runs ``npm ci``. The vendor paths are a
contract other pages rely on (the big screen, the officer PWA), so they do not carry
version numbers: upgrading a library changes the lock file, never a URL.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
LOCK_FILE = ROOT / "package-lock.json"
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"


@dataclass(frozen=True)
class Asset:
    """One file or folder copied from an npm package to a stable vendor path."""

    package: str
    source: str
    """Path inside the package (a file or a folder)."""
    target: str
    """Path under ``static/vendor``: the URL is ``/static/vendor/<target>``."""


ASSETS: tuple[Asset, ...] = (
    Asset("leaflet", "dist/leaflet.js", "leaflet/leaflet.js"),
    Asset("leaflet", "dist/leaflet.css", "leaflet/leaflet.css"),
    Asset("leaflet", "dist/images", "leaflet/images"),
    Asset("leaflet", "LICENSE", "leaflet/LICENSE"),
    Asset("supercluster", "dist/supercluster.min.js", "supercluster/supercluster.min.js"),
    Asset("supercluster", "LICENSE", "supercluster/LICENSE"),
    Asset("echarts", "dist/echarts.min.js", "echarts/echarts.min.js"),
    Asset("echarts", "LICENSE", "echarts/LICENSE"),
    # the wall's video windows (HLS); the light build: no subtitles, alternate audio or DRM
    Asset("hls.js", "dist/hls.light.min.js", "hls/hls.min.js"),
    Asset("hls.js", "LICENSE", "hls/LICENSE"),
)
"""Every vendored file; the URLs these give are listed in :func:`vendor_urls`."""


def vendor_urls() -> list[str]:
    """The URL of every vendored file or folder (for docs and the asset tests)."""
    return [f"/static/vendor/{a.target}" for a in ASSETS]


def _needs_install() -> bool:
    marker = NODE_MODULES / ".package-lock.json"
    if not marker.exists():
        return True
    return LOCK_FILE.exists() and LOCK_FILE.stat().st_mtime > marker.stat().st_mtime


def npm_ci() -> None:
    """Install exactly what the lock file names (from the npm registry)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed: apt-get install -y npm (or nodejs), then rerun")
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True
    )


def copy_assets(vendor_dir: Path = VENDOR_DIR) -> list[Path]:
    """Copy every asset of :data:`ASSETS` into *vendor_dir*; returns the written paths."""
    written: list[Path] = []
    for asset in ASSETS:
        src = NODE_MODULES / asset.package / asset.source
        if not src.exists():
            raise SystemExit(f"{src} is missing: run `npm ci` at {ROOT}")
        dst = vendor_dir / asset.target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
        written.append(dst)
    return written


def assets_present(vendor_dir: Path = VENDOR_DIR) -> bool:
    """Are all vendored files in place (a test run can skip the build)?"""
    return all((vendor_dir / a.target).exists() for a in ASSETS)


def ensure_assets(vendor_dir: Path = VENDOR_DIR) -> None:
    """Build the vendor folder if any file is missing (used by the browser tests)."""
    if assets_present(vendor_dir):
        return
    if _needs_install():
        npm_ci()
    copy_assets(vendor_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--skip-install", action="store_true", help="do not run npm ci")
    args = parser.parse_args(argv)
    if not args.skip_install and _needs_install():
        npm_ci()
    for path in copy_assets():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
