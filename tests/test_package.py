import imagetrail
from imagetrail import errors


def test_public_api_is_curated() -> None:
    assert sorted(imagetrail.__all__) == ["ImagetrailError", "__version__"]


def test_every_error_descends_from_the_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ImagetrailError)
