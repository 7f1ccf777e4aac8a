"""The web app: pages, ``/api/v1`` JSON, ``/metrics``, health; ``imagetrail serve``."""

from imagetrail.web.app import create_app
from imagetrail.web.server import serve

__all__ = ["create_app", "serve"]
