"""The kind of a change between two versions (docs/analysis.md, "Changes")."""

from __future__ import annotations

from imagetrail.analysis._common import Version, split_image, tag_cmp
from imagetrail.model import ChangeKind


def classify(old: Version, new: Version, *, was_current_before: bool) -> ChangeKind:
    """The kind of a change from version ``old`` to ``new`` (neither is None).

    ``was_current_before``: ``new`` was the current version at some earlier time.
    """
    (image_a, digest_a), (image_b, digest_b) = old, new
    if image_a == image_b and None not in (digest_a, digest_b) and digest_a != digest_b:
        return ChangeKind.TAG_REPUSH
    parts_a, parts_b = split_image(image_a), split_image(image_b)
    cmp: int | None = None
    # Tags order versions only within one repository (and only when both are references).
    if parts_a is not None and parts_b is not None and parts_a[1] == parts_b[1]:
        cmp = tag_cmp(parts_a[2], parts_b[2])
    # Going back to a version seen before is a rollback unless it is provably newer
    # (re-upgrading after a rollback is an upgrade); incomparable counts as "not newer".
    if was_current_before and cmp != -1:
        return ChangeKind.ROLLBACK
    if cmp == -1:
        return ChangeKind.UPGRADE
    if cmp == 1:
        return ChangeKind.DOWNGRADE
    return ChangeKind.OTHER
