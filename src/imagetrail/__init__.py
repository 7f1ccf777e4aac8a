"""imagetrail: which container image versions ran where and when."""

from imagetrail.errors import ImagetrailError

__version__ = "0.1.0"
__all__ = ["ImagetrailError", "__version__"]
