import dataclasses
import types
import typing
from pathlib import Path

import pytest

from imagetrail import settings
from imagetrail.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    cfg = tmp_path / "imagetrail.yaml"
    cfg.write_text("prometheus_url: http://file:9090\nchunk: 6h\ntenant: from-file\n")
    env = {"IMAGETRAIL_PROMETHEUS_URL": "http://env:9090", "IMAGETRAIL_CHUNK": "2h"}
    s = settings.load({"prometheus_url": "http://flag:9090"}, environ=env, config_path=cfg)
    assert s.prometheus_url == "http://flag:9090"
    assert s.origins["prometheus_url"] == "--prometheus"
    assert s.chunk == 7200
    assert s.origins["chunk"] == "IMAGETRAIL_CHUNK"
    assert s.tenant == "from-file"
    assert s.scrape_interval == 30
    assert s.origins["scrape_interval"] == "default"


def test_none_flags_do_not_override(tmp_path: Path) -> None:
    s = settings.load({"ledger": None}, environ={"IMAGETRAIL_LEDGER": "/x.db"})
    assert s.ledger == "/x.db"


def test_config_file_from_env(tmp_path: Path) -> None:
    cfg = tmp_path / "other.yaml"
    cfg.write_text("cluster-label: k8s_cluster\n")
    s = settings.load({}, environ={"IMAGETRAIL_CONFIG": str(cfg)})
    assert s.cluster_label == "k8s_cluster"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nonsense: 1\n", "unknown setting 'nonsense'"),
        ("- a list\n", "must be a mapping"),
        ("chunk: [unclosed\n", "not valid YAML"),
        ("chunk: -5m\n", "chunk"),
        ("signal: magic\n", "signal"),
        ("concurrency: 0\n", "concurrency"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "imagetrail.yaml"
    cfg.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        settings.load({}, environ={}, config_path=cfg)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        settings.load({}, environ={}, config_path=tmp_path / "nope.yaml")


def test_empty_config_variable_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IMAGETRAIL_CONFIG= (empty) was read as the path "." and failed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imagetrail.yaml").write_text("cluster-label: from_cwd\n")
    s = settings.load({}, environ={"IMAGETRAIL_CONFIG": ""})
    assert s.cluster_label == "from_cwd"


def test_config_variable_naming_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file"):
        settings.load({}, environ={"IMAGETRAIL_CONFIG": str(tmp_path)})


def test_secrets_are_redacted() -> None:
    s = settings.load(
        {}, environ={"IMAGETRAIL_BEARER_TOKEN": "s3cret", "IMAGETRAIL_BASIC_AUTH_PASSWORD": "pw"}
    )
    shown = repr(s.redacted())
    assert "s3cret" not in shown
    assert "pw'" not in shown
    assert s.bearer_token == "s3cret"


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    for setting in settings.SETTINGS:
        assert f"`{setting.name}`" in text, f"{setting.name} missing from docs/configuration.md"
        assert setting.env in text, f"{setting.env} missing from docs/configuration.md"


def _parsed_type(setting: settings.Setting) -> typing.Any:
    """What the setting's parser returns: its return annotation (a class parses to itself);
    a type form (a class, a union, a Literal), hence ``Any``."""
    if isinstance(setting.parse, type):
        return setting.parse
    return typing.get_type_hints(setting.parse)["return"]


def test_typed_fields_match_the_table() -> None:
    """One typed field per row of SETTINGS, in table order, typed as its parser returns
    (``| None`` when it has no default): a setting added on one side only fails here."""
    fields = [f.name for f in dataclasses.fields(settings.Settings)]
    assert fields == [s.name for s in settings.SETTINGS] + ["origins"]
    hints = typing.get_type_hints(settings.Settings)
    for setting in settings.SETTINGS:
        parsed = _parsed_type(setting)
        expected = parsed if setting.default is not None else parsed | None
        assert hints[setting.name] == expected, setting.name


def test_loaded_values_have_their_field_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each default, parsed, is of its field's type (so the annotations are not just words)."""
    monkeypatch.chdir(tmp_path)  # no imagetrail.yaml here
    s = settings.load({}, environ={})
    hints = typing.get_type_hints(settings.Settings)
    for setting in settings.SETTINGS:
        value = getattr(s, setting.name)
        if value is None:
            assert setting.default is None, setting.name
            continue
        kind = typing.get_origin(hints[setting.name]) or hints[setting.name]
        if kind is typing.Literal:
            assert value in typing.get_args(hints[setting.name]), setting.name
        elif kind is types.UnionType:
            (inner,) = [a for a in typing.get_args(hints[setting.name]) if a is not type(None)]
            assert isinstance(value, typing.get_origin(inner) or inner), setting.name
        else:
            assert isinstance(value, kind), setting.name
    assert s.values == {name: getattr(s, name) for name in settings.BY_NAME}
    assert s.get("chunk") == s.chunk
    assert s.get("nope") is None
