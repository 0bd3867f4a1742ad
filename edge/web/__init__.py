"""The local web page (``service.web``): live view, zone drawing, the day's analytics, alerts, status.

Standard library only (``http.server``); the page, its script and style are one file served from
this package, so it works offline. Frames go to this page and nowhere else.
"""

from .server import WebServer, WebState, read_day_windows

__all__ = ["WebServer", "WebState", "read_day_windows"]
