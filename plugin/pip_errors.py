"""What pip's (and venv's) failures mean for the user: one sentence with the fix, never a traceback.

The patterns are the words pip, urllib3 and venv print; the first match wins, so causes come before their
consequences (a proxy failure also ends in "No matching distribution found").
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

# What the environment takes on disk, downloads and cache included (CUDA wheels are the larger). CPU: the real
# set-up (scripts/real_setup_check.py) measured a 1.7 GB environment with CPU-only torch; pip's cache comes on top.
NEEDED_GB = {"cpu": 3.0, "gpu": 9.0}

# pip's words -> what they mean for the user; the first match wins, so causes come before their consequences
# (a proxy failure also ends in "No matching distribution found").
_PIP_FAILURES: list[tuple[tuple[str, ...], str]] = [
    (
        ("no space left on device", "errno 28", "not enough space on the disk"),
        "The disk is full. The backend needs about {gb:.0f} GB free in {folder}; free some space and try again.",
    ),
    (
        ("proxyerror", "cannot connect to proxy", "407 proxy authentication", "tunnel connection failed"),
        "pip could not get through the proxy. Check the proxy in QGIS (Settings › Options › Network: it is passed "
        "to pip), including its user name and password, or ask your IT department.",
    ),
    (
        ("certificate_verify_failed", "sslerror", "ssl: ", "certificate verify failed"),
        "A secure connection to the package index failed: its certificate is not trusted. Networks that inspect "
        "traffic need their certificate installed; ask your IT department, or set PIP_CERT to its file.",
    ),
    (
        ("temporary failure in name resolution", "name or service not known", "getaddrinfo failed",
         "failed to establish a new connection", "network is unreachable", "no route to host",
         "connection refused", "max retries exceeded", "could not fetch url", "nodename nor servname"),
        "No network: pip could not reach the Python package index (pypi.org). Connect to the internet, or set your "
        "proxy in QGIS (Settings › Options › Network), and try again.",
    ),
    (
        ("read timed out", "readtimeouterror", "timed out"),
        "The download timed out: the connection is slow or unstable. Try again; what was downloaded is kept.",
    ),
    (
        ("do not match the hashes", "hash mismatch"),
        "A download arrived damaged (its checksum is wrong). Try again; a proxy or antivirus may be altering files.",
    ),
    (
        ("permission denied", "errno 13", "access is denied"),
        "pip was not allowed to write to {folder}. Choose a folder you own, or close programs using it.",
    ),
    (
        ("ensurepip is not available", "no module named venv", "no module named ensurepip", "python3-venv"),
        "This Python cannot create environments. On Debian or Ubuntu install the python3-venv package "
        "(sudo apt install python3-venv), or choose “Use an existing Python…”.",
    ),
    (
        ("memoryerror", "cannot allocate memory"),
        "pip ran out of memory. Close other programs and try again.",
    ),
    (
        ("no matching distribution found", "could not find a version that satisfies"),
        "No ready-made build of {package} fits this computer (Python {python} on {platform}). Use a Python "
        "3.10 to 3.12 environment with “Use an existing Python…”, or ask on the plugin's issue tracker.",
    ),
    (
        ("failed building wheel", "subprocess-exited-with-error", "microsoft visual c++", "error: command 'gcc'"),
        "A package had to be compiled from source, and that failed: no ready-made build exists for this Python. "
        "Use a Python 3.10 to 3.12 environment with “Use an existing Python…”.",
    ),
]  # fmt: skip


def explain_pip_failure(lines: Iterable[str], folder: Path, gpu: bool = False) -> str:
    """Return a sentence saying why pip (or venv) failed and what to do, from its output lines."""
    lines = list(lines)
    text = "\n".join(lines).lower()
    package_match = re.search(r"(?:no matching distribution found for|satisfies the requirement)\s+(\S+)", text)
    values = {
        "gb": NEEDED_GB["gpu" if gpu else "cpu"],
        "folder": folder,
        "package": package_match.group(1) if package_match else "a package",
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "platform": sys.platform,
    }
    for needles, sentence in _PIP_FAILURES:
        if any(needle in text for needle in needles):
            return sentence.format(**values)
    last = next((line.strip() for line in reversed(lines) if line.strip().upper().startswith("ERROR")), None)
    last = last or next((line.strip() for line in reversed(lines) if line.strip()), "no message")
    return f"pip failed ({last[:300]}). The log above has the details."
