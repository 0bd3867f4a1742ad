"""Customer identity across a visit (issue 21): appearance views and the gallery of recent customers."""

from .appearance import AppearanceViews
from .gallery import CustomerGallery

__all__ = ["AppearanceViews", "CustomerGallery"]
