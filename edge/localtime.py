"""The store's clock for people: times shown in ``service.time_zone`` (an IANA name), else the
system's time zone, always 24 h (the web page, ``fashion-edge report``)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def system_time_zone() -> str:
    """The system's IANA time zone name ($TZ, /etc/timezone, the /etc/localtime link), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return "UTC" if name in UTC_NAMES else name
    return "UTC"


# Names of UTC itself: shown as plain "UTC" (a server's /etc/localtime is often Etc/UTC)
UTC_NAMES = {"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu", "Etc/GMT", "GMT", "Etc/UCT", "UCT"}


def store_time_zone(config=None) -> str:
    """``config.service.time_zone`` when set, else the system's."""
    configured = getattr(getattr(config, "service", None), "time_zone", None)
    return configured or system_time_zone()


def local_text(epoch_s: float, zone: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """``epoch_s`` as 24-hour text in ``zone``."""
    return datetime.fromtimestamp(epoch_s, ZoneInfo(zone)).strftime(fmt)
