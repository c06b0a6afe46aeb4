"""What the API loads once per process: the platform register and its index, protected areas, the model.

:func:`load_resources` runs in the app's lifespan (never per request). A layer that cannot be
loaded (a missing register, no weights yet) does not stop the service: it is recorded in
``Resources.unavailable`` with the reason, ``/health`` reports it, and the endpoints that need it
answer 503 with that reason as a problem document.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from vesselwatch.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """Reference data and the heading model shared by every request of one process.

    Attributes
    ----------
    platforms : pipeline.reference.Platforms or None
        The platform register.
    platform_index : geo.nearest.PlatformIndex or None
        Exact nearest-platform index over ``platforms`` (ids = ``platforms.platform_id``).
    areas : pipeline.reference.ProtectedAreas or None
        Protected areas.
    heading_model : models.inference.HeadingModel or None
        The wake-keypoint model.
    unavailable : dict
        Layer name → why it could not be loaded.
    """

    platforms: Any = None
    platform_index: Any = None
    areas: Any = None
    heading_model: Any = None
    unavailable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_platforms(cls, platforms: Any, **kwargs: Any) -> Resources:
        """Resources around an already loaded register (its index is built here)."""
        return cls(platforms=platforms, platform_index=platforms.index(), **kwargs)


def load_resources(settings: Settings, *, heading_model: bool = True) -> Resources:
    """Load the platform register (and index it), protected areas and, optionally, the model.

    Parameters
    ----------
    settings
        Paths come from ``resolved_platforms_path()``, ``resolved_protected_areas_path()`` and
        ``resolved_heading_weights_path()``.
    heading_model
        Load the wake-keypoint model (the slowest part: seconds).
    """
    resources = Resources()
    try:
        from pipeline.reference import load_platforms

        resources.platforms = load_platforms(settings.resolved_platforms_path())
        resources.platform_index = resources.platforms.index()
    except Exception as error:  # the service stays up; endpoints that need platforms answer 503
        resources.unavailable["platforms"] = str(error)
        log.warning("platform register unavailable: %s", error)
    try:
        from pipeline.reference import load_protected_areas

        resources.areas = load_protected_areas(
            settings.resolved_protected_areas_path(), default_radius_km=settings.alert_radius_km
        )
    except Exception as error:
        resources.unavailable["protected-areas"] = str(error)
        log.warning("protected areas unavailable: %s", error)
    if heading_model:
        try:
            from models.inference import load_heading_model

            resources.heading_model = load_heading_model(settings.resolved_heading_weights_path())
        except Exception as error:
            resources.unavailable["heading-model"] = str(error)
            log.warning("heading model unavailable: %s", error)
    else:
        resources.unavailable["heading-model"] = "not loaded in this process"
    return resources
