"""Image references: grammar, normalisation, runtime values, real scrapes, tag ordering."""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from imagetrail.errors import ImageRefError, InputError
from imagetrail.imageref import (
    ImageRef,
    RuntimeImageKind,
    classify,
    compare_tags,
    is_floating_tag,
    is_sandbox,
    parse,
    resolve,
)
from paths import FIXTURES as DATA

FIXTURES = Path(os.environ.get("IMAGETRAIL_FIXTURES", DATA))
NRI = FIXTURES / "nri-kubernetes"
SHA_A = "sha256:" + "a" * 64
HEX_B = "b" * 64

# ---------------------------------------------------------------------------------------
# parse: the distribution/reference grammar and normalisation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("library/debian", "docker.io/library/debian"),
        ("docker/docker", "docker.io/docker/docker"),
        ("docker.io/debian", "docker.io/library/debian"),
        ("index.docker.io/docker/docker", "docker.io/docker/docker"),
        ("index.docker.io/library/debian:12", "docker.io/library/debian:12"),
        ("localhost/library/debian", "localhost/library/debian"),
        ("localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1"),
        ("127.0.0.1:5000/repo", "127.0.0.1:5000/repo"),
        ("[2001:db8::1]/repo", "[2001:db8::1]/repo"),
        ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag"),
        ("foo.com:8080/bar", "foo.com:8080/bar"),
        ("Uppercase/lowercase:tag", "Uppercase/lowercase:tag"),  # upper case: a domain
        ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080"),  # no '/': 8080 is a tag
        ("localhost:5000", "docker.io/library/localhost:5000"),
        ("xn--7o8h.com/myimage:xn--7o8h.com", "xn--7o8h.com/myimage:xn--7o8h.com"),
        ("a/b__c/d--e/f.g/h_i", "docker.io/a/b__c/d--e/f.g/h_i"),
        ("nginx@" + SHA_A, "docker.io/library/nginx@" + SHA_A),
        ("nginx:1.25@" + SHA_A, "docker.io/library/nginx:1.25@" + SHA_A),
        ("quay.io/x/y@sha512:" + "c" * 128, "quay.io/x/y@sha512:" + "c" * 128),
        (
            "registry.k8s.io/metrics-server/metrics-server:v0.8.0@sha256:"
            "89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2",
            "registry.k8s.io/metrics-server/metrics-server:v0.8.0@sha256:"
            "89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2",
        ),
        ("nginx:" + "t" * 128, "docker.io/library/nginx:" + "t" * 128),
    ],
)
def test_parse_normalises(value: str, expected: str) -> None:
    assert str(parse(value)) == expected


def test_parse_splits_fields() -> None:
    ref = parse("localhost:5000/team/app:v2@" + SHA_A)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "localhost:5000",
        "team/app",
        "v2",
        SHA_A,
    )
    assert ref.name == "localhost:5000/team/app"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty"),
        ("https://github.com/docker/docker", "registry port"),
        ("docker/Docker", "lower-case"),
        ("-docker", "path component"),
        ("-docker/docker", "path component"),
        ("docker///docker", "path component"),
        ("docker.io/docker/Docker", "lower-case"),
        ("Nginx", "lower-case"),
        ("nginx:", "invalid tag"),
        ("nginx:-x", "invalid tag"),
        ("nginx:" + "t" * 129, "invalid tag"),
        ("nginx:1.25 ", "whitespace"),
        (" nginx", "whitespace"),
        ("nginx@", "sha256"),
        ("nginx@sha256:" + "a" * 63, "exactly 64"),
        ("nginx@sha256:" + "A" * 64, "lower-case hex"),
        ("nginx@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("@" + SHA_A, "empty"),
        (":tag", "empty"),
        ("aa/asdf$$^/aa", "path component"),
        ("a:b:c", "path component"),
        ("[fe80::1%eth0]:5000/repo", "registry host"),
        ("foo.com:80a/bar", "registry port"),
        ("foo-.com/bar", "registry host"),
        (HEX_B, "image id"),
        ("nginx:١٢", "invalid tag"),  # Arabic-Indic digits: \w in Python, not in Go
        ("ngïnx", "path component"),
        ("registry.k8s.io/" + "a" * 240, "longer than 255"),
    ],
)
def test_parse_rejects_with_a_clear_message(value: str, problem: str) -> None:
    with pytest.raises(ImageRefError) as info:
        parse(value)
    message = str(info.value)
    assert problem in message
    assert repr(value[:80]) in message
    assert info.value.hint
    assert isinstance(info.value, InputError)


def test_surrounding_whitespace_is_strict_in_parse_lenient_in_classify() -> None:
    with pytest.raises(ImageRefError, match="whitespace"):
        parse("nginx:1.25\n")
    assert str(classify("nginx:1.25\n").ref) == "docker.io/library/nginx:1.25"


def test_familiar_keeps_names_that_would_reparse_as_a_registry() -> None:
    ref = parse("docker.io/a.b/c:1")
    assert ref.familiar == "docker.io/a.b/c:1"
    assert parse(ref.familiar) == ref


def test_name_length_limit_is_inclusive() -> None:
    name = "registry.k8s.io/" + "a" * 240
    assert len(name) == 256
    assert parse(name[:-1]).name == name[:-1]


@pytest.mark.parametrize(
    "hostile",
    [
        'nginx:"1.25"',
        "nginx\nimage: evil",
        "<script>alert(1)</script>",
        "nginx:1.25\x00",
        "nginx:1.25\u200b",
        "ｎｇｉｎｘ",
        "🐳:latest",
        "a" * 10_000,
        "nginx:" + "1" * 10_000,
        "docker-pullable://" + "x" * 10_000,
        "sha256:" + "a" * 10_000,
        "a/" * 5_000,
        "\\x00\\u0000",
    ],
)
def test_hostile_values_are_rejected_not_crashed(hostile: str) -> None:
    with pytest.raises(ImageRefError) as info:
        parse(hostile)
    assert len(str(info.value)) < 300  # the message quotes a truncated value
    assert classify(hostile).kind is RuntimeImageKind.INVALID
    display, digest = resolve(hostile)
    assert display == hostile.strip()
    assert digest is None
    assert not is_sandbox(hostile)


@pytest.mark.parametrize(
    ("value", "familiar", "display"),
    [
        ("nginx:1.25", "nginx:1.25", "docker.io/library/nginx:1.25"),
        ("docker.io/library/nginx", "nginx", "docker.io/library/nginx"),
        ("kindest/kindnetd:v1", "kindest/kindnetd:v1", "docker.io/kindest/kindnetd:v1"),
        ("library/a/b:1", "library/a/b:1", "docker.io/library/a/b:1"),
        ("nginx@" + SHA_A, "nginx@" + SHA_A, "docker.io/library/nginx@" + SHA_A),
        ("nginx:1@" + SHA_A, "nginx:1@" + SHA_A, "docker.io/library/nginx:1"),
        ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ],
)
def test_familiar_and_display(value: str, familiar: str, display: str) -> None:
    ref = parse(value)
    assert ref.familiar == familiar
    assert ref.display == display
    assert parse(ref.familiar) == ref


# Generated valid references ------------------------------------------------------------

_component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,6}){0,2}", fullmatch=True)
_host = st.from_regex(
    r"[a-z0-9]{1,8}(?:\.[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?){1,3}", fullmatch=True
)
_registry = st.one_of(
    st.just("docker.io"),
    st.just("localhost"),
    _host,
    st.builds(
        lambda h, p: f"{h}:{p}", st.one_of(_host, st.just("localhost")), st.integers(1, 65535)
    ),
    st.builds(lambda p: f"[::1]:{p}", st.integers(1, 65535)),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
_digest = st.one_of(
    st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True),
    st.from_regex(r"sha512:[a-f0-9]{128}", fullmatch=True),
)


@st.composite
def valid_refs(draw: st.DrawFn) -> ImageRef:
    registry = draw(_registry)
    components = draw(st.lists(_component, min_size=1, max_size=4))
    if registry == "docker.io" and len(components) == 1:
        components.insert(0, "library")
    repository = "/".join(components)
    assume(len(registry) + 1 + len(repository) <= 255)
    tag = draw(st.none() | _tag)
    digest = draw(st.none() | _digest)
    return ImageRef(registry, repository, tag, digest)


@given(valid_refs())
def test_generated_references_round_trip(ref: ImageRef) -> None:
    assert parse(str(ref)) == ref
    assert parse(ref.familiar) == ref
    assert parse(ref.display).display == ref.display
    assert classify(str(ref)).ref == ref


# The distribution/reference ReferenceRegexp, spelled out independently as an oracle.
_GO_PATH = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_GO_DOMAIN = (
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_GO_REFERENCE = re.compile(
    rf"(?:{_GO_DOMAIN}/)?{_GO_PATH}(?:/{_GO_PATH})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
_REFERENCE_ALPHABET = st.sampled_from([*list("abcz019AZ:/@._-[] \n%$"), "sha256:", "a" * 64])


@given(st.lists(_REFERENCE_ALPHABET, max_size=20).map("".join))
def test_parse_agrees_with_the_reference_grammar(value: str) -> None:
    try:
        ref = parse(value)
    except ImageRefError:
        return
    assert _GO_REFERENCE.fullmatch(value), value
    assert _GO_REFERENCE.fullmatch(str(ref)), str(ref)
    assert str(parse(str(ref))) == str(ref)


def _parse_or_error(value: str) -> ImageRef | ImageRefError:
    try:
        return parse(value)
    except ImageRefError as exc:
        return exc


@given(st.text(max_size=300))
def test_parse_raises_only_image_ref_errors(value: str) -> None:
    result = _parse_or_error(value)
    if isinstance(result, ImageRefError):
        assert "not an image reference" in str(result)
    else:
        assert parse(str(result)) == result


@given(st.one_of(st.text(max_size=300), st.lists(_REFERENCE_ALPHABET, max_size=20).map("".join)))
def test_classify_and_resolve_never_raise(value: str) -> None:
    image = classify(value)
    assert image.raw == value
    assert (image.ref is not None) == (image.kind is RuntimeImageKind.REFERENCE)
    if image.kind is RuntimeImageKind.IMAGE_ID:
        assert image.image_id is not None
        assert image.image_id.startswith("sha")
    display, digest = resolve(value, value, value)
    assert display
    assert digest is None or digest.startswith("sha")
    is_sandbox(value)


# ---------------------------------------------------------------------------------------
# classify / resolve / is_sandbox
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "ref", "image_id"),
    [
        ("nginx:1.25", RuntimeImageKind.REFERENCE, "docker.io/library/nginx:1.25", None),
        ("docker.io/library/nginx@" + SHA_A, RuntimeImageKind.REFERENCE, None, SHA_A),
        ("docker-pullable://nginx@" + SHA_A, RuntimeImageKind.REFERENCE, None, SHA_A),
        ("docker://sha256:" + HEX_B, RuntimeImageKind.IMAGE_ID, None, "sha256:" + HEX_B),
        ("sha256:" + HEX_B, RuntimeImageKind.IMAGE_ID, None, "sha256:" + HEX_B),
        (HEX_B, RuntimeImageKind.IMAGE_ID, None, "sha256:" + HEX_B),
        ("  nginx  ", RuntimeImageKind.REFERENCE, "docker.io/library/nginx", None),
        ("", RuntimeImageKind.EMPTY, None, None),
        (" \t\n", RuntimeImageKind.EMPTY, None, None),
        ("sha256:abc", RuntimeImageKind.INVALID, None, None),  # a broken id, not repo "sha256"
        ("sha256:" + HEX_B.upper(), RuntimeImageKind.INVALID, None, None),
        ("garbage!!", RuntimeImageKind.INVALID, None, None),
    ],
)
def test_classify(
    value: str, kind: RuntimeImageKind, ref: str | None, image_id: str | None
) -> None:
    image = classify(value)
    assert image.kind is kind
    assert image.image_id == image_id
    if ref is not None:
        assert str(image.ref) == ref


@pytest.mark.parametrize(
    "value",
    [
        "registry.k8s.io/pause:3.10",
        "k8s.gcr.io/pause:3.5",
        "gcr.io/google_containers/pause-amd64:3.0",
        "gcr.io/google_containers/pause:3.1",
        "mcr.microsoft.com/oss/kubernetes/pause:3.9",
        "public.ecr.aws/eks-distro/kubernetes/pause:3.9",
        "docker.io/rancher/mirrored-pause:3.6",
        "rancher/pause:3.1",
        "k8s.gcr.io/pause-arm64@" + SHA_A,
        "registry.access.redhat.com/rhel7/pod-infrastructure:latest",
    ],
)
def test_sandbox_images(value: str) -> None:
    assert is_sandbox(value)


@pytest.mark.parametrize(
    "value",
    [
        "nginx:1.25",
        "registry.k8s.io/pauser:1",
        "example.com/pause-tool/app:1",
        "sha256:" + HEX_B,
        "",
    ],
)
def test_not_sandbox_images(value: str) -> None:
    assert not is_sandbox(value)


@pytest.mark.parametrize(
    ("triple", "expected"),
    [
        (("", "", ""), ("<unknown>", None)),
        (("sha256:" + HEX_B, "", ""), ("sha256:" + HEX_B, None)),
        (("nginx:1.25", "", ""), ("docker.io/library/nginx:1.25", None)),
        (("nginx@" + SHA_A, "", ""), ("docker.io/library/nginx@" + SHA_A, SHA_A)),
        (("", "", "nginx:1.26"), ("docker.io/library/nginx:1.26", None)),
        (("", "docker-pullable://nginx@" + SHA_A, ""), ("docker.io/library/nginx@" + SHA_A, SHA_A)),
        (("garbage!!", "", ""), ("garbage!!", None)),
    ],
)
def test_resolve_edge_cases(triple: tuple[str, str, str], expected: tuple[str, str | None]) -> None:
    assert resolve(*triple) == expected


# ---------------------------------------------------------------------------------------
# Real scrapes: nri-kubernetes kube-state-metrics, cAdvisor and kubelet pod lists
# ---------------------------------------------------------------------------------------

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _series(path: Path, metric: re.Pattern[str]) -> Iterator[dict[str, str]]:
    """Label sets of the series in a Prometheus text exposition whose name matches."""
    for line in path.read_text().splitlines():
        name, brace, rest = line.partition("{")
        if not brace or line.startswith("#") or not metric.fullmatch(name):
            continue
        labels = rest.rsplit("}", 1)[0]
        yield {
            key: re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m[0]], value)
            for key, value in _LABEL.findall(labels)
        }


_KSM_INFO = re.compile(r"kube_pod_(?:init_)?container_info")
_CADVISOR = re.compile(r"container_[a-z_]+")
_KSM_FILES = sorted(NRI.glob("k8s_*/ksm_metrics.txt"))
_CADVISOR_FILES = [
    *sorted(NRI.glob("k8s_*/kubelet_metrics_cadvisor.txt")),
    *NRI.glob("legacy/*.txt"),
]
_POD_FILES = [*sorted(NRI.glob("k8s_*/kubelet_pods.json")), *NRI.glob("legacy/*.json")]


@functools.cache
def _ksm_rows() -> tuple[dict[str, str], ...]:
    return tuple(labels for path in _KSM_FILES for labels in _series(path, _KSM_INFO))


def test_fixtures_are_present() -> None:
    assert len(_KSM_FILES) == 2
    assert len(_CADVISOR_FILES) == 3
    assert len(_POD_FILES) == 3
    assert len(_ksm_rows()) > 40


def _assert_runtime_value(value: str) -> None:
    image = classify(value)
    assert image.kind is not RuntimeImageKind.INVALID, value
    assert (image.kind is RuntimeImageKind.EMPTY) == (value == "")
    if image.kind is RuntimeImageKind.REFERENCE:
        assert str(parse(value.removeprefix("docker-pullable://"))) == str(image.ref)


def test_every_ksm_label_value_classifies() -> None:
    for row in _ksm_rows():
        for label in ("image", "image_id", "image_spec"):
            _assert_runtime_value(row[label])


def test_every_ksm_triple_resolves_to_a_reference() -> None:
    for row in _ksm_rows():
        display, digest = resolve(row["image"], row["image_id"], row["image_spec"])
        ref = parse(display)  # every real row names a reference somewhere
        assert ref.tag is not None, row
        reported = classify(row["image"])
        if reported.ref is not None:
            assert display == reported.ref.display  # what ran wins over what was asked
        if digest is not None:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
        assert (digest is None) == (
            row["image_id"] in ("",) or row["image_id"].startswith("sha256:")
        )
        assert not is_sandbox(display)


def _ksm_row(pod_prefix: str, version: str) -> tuple[str, str | None]:
    path = NRI / f"k8s_{version}" / "ksm_metrics.txt"
    rows = [r for r in _series(path, _KSM_INFO) if r["pod"].startswith(pod_prefix)]
    assert rows, pod_prefix
    return resolve(rows[0]["image"], rows[0]["image_id"], rows[0]["image_spec"])


@pytest.mark.parametrize(
    ("version", "pod", "expected"),
    [
        (
            "1_31",
            "metrics-server-",
            (
                "registry.k8s.io/metrics-server/metrics-server:v0.8.0",
                "sha256:89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2",
            ),
        ),
        (
            "1_22",
            "metrics-server-",
            (
                "registry.k8s.io/metrics-server/metrics-server:v0.6.3",
                "sha256:c60778fa1c44d0c5a0c4530ebe83f9243ee6fc02f4c3dc59226c201931350b10",
            ),
        ),
        (
            # image_spec says registry.k8s.io, the runtime ran k8s.gcr.io: keep what ran.
            "1_22",
            "etcd-",
            (
                "k8s.gcr.io/etcd:3.5.6-0",
                "sha256:dd75ec974b0a2a6f6bb47001ba09207976e625db898d1b16735528c009cb171c",
            ),
        ),
        (
            "1_22",
            "e2e-statefulset-0",
            (
                "docker.io/library/busybox:latest",
                "sha256:560af6915bfc8d7630e50e212e08242d37b63bd5c1ccf9bd4acccf116e262d5b",
            ),
        ),
        ("1_22", "e2e-cronjob-", ("docker.io/library/perl:5.34.0", None)),
        # image_id is a bare image id (config digest), not a repository digest.
        ("1_22", "storage-provisioner", ("gcr.io/k8s-minikube/storage-provisioner:v5", None)),
        (
            "1_31",
            "kindnet-",
            (
                "docker.io/kindest/kindnetd:v20250512-df8de77b",
                "sha256:07a4b3fe0077a0ae606cc0a200fc25a28fa64dcc30b8d311b461089969449f9a",
            ),
        ),
    ],
)
def test_resolve_real_ksm_rows(version: str, pod: str, expected: tuple[str, str | None]) -> None:
    assert _ksm_row(pod, version) == expected


def test_every_cadvisor_image_label_classifies() -> None:
    kinds: dict[str, set[RuntimeImageKind]] = {}
    sandboxes: dict[str, set[str]] = {}
    for path in _CADVISOR_FILES:
        values = {labels["image"] for labels in _series(path, _CADVISOR) if "image" in labels}
        assert len(values) > 10, path
        for value in values:
            _assert_runtime_value(value)
        kinds[path.parent.name] = {classify(v).kind for v in values}
        sandboxes[path.parent.name] = {v for v in values if is_sandbox(v)}
    assert RuntimeImageKind.IMAGE_ID in kinds["legacy"]  # 1.15 reports bare sha256: ids
    assert RuntimeImageKind.IMAGE_ID not in kinds["k8s_1_31"]
    assert sandboxes == {
        "k8s_1_22": {"k8s.gcr.io/pause:3.5"},
        "k8s_1_31": {"registry.k8s.io/pause:3.10"},
        "legacy": {"gcr.io/google_containers/pause-amd64:3.0"},
    }


def test_cadvisor_digest_only_and_bare_id_values() -> None:
    ms = "registry.k8s.io/metrics-server/metrics-server@sha256:" + (
        "89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2"
    )
    assert resolve(ms) == (ms, ms.split("@")[1])
    legacy = "sha256:1a95d0df2997f93741fbe2a15d2c31a394e752fd942ec29bf16a44163342f6a1"
    assert resolve(legacy) == (legacy, None)


def _pod_images(path: Path) -> Iterator[tuple[str, str]]:
    """(image, imageID) of every spec and status container in a kubelet pod list."""
    for pod in json.loads(path.read_text())["items"]:
        spec, status = pod["spec"], pod.get("status", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            yield container["image"], ""
        for state in status.get("containerStatuses", []) + status.get("initContainerStatuses", []):
            yield state["image"], state.get("imageID", "")


def test_every_kubelet_pod_image_classifies() -> None:
    seen = 0
    for path in _POD_FILES:
        for image, image_id in _pod_images(path):
            seen += 1
            _assert_runtime_value(image)
            _assert_runtime_value(image_id)
            display, digest = resolve(image, image_id)
            parse(display)
            if image_id.startswith(("docker-pullable://", "docker.io/", "registry.k8s.io/")):
                assert digest is not None
                assert image_id.endswith(digest)
    assert seen > 50


def test_docker_pullable_status_from_2018_pod_list() -> None:
    assert resolve(
        "k8s.gcr.io/kube-controller-manager:v1.16.0",
        "docker-pullable://k8s.gcr.io/kube-controller-manager@sha256:"
        "c156a05ee9d40e3ca2ebf9337f38a10558c1fc6c9124006f128a82e6c38cdf3e",
    ) == (
        "k8s.gcr.io/kube-controller-manager:v1.16.0",
        "sha256:c156a05ee9d40e3ca2ebf9337f38a10558c1fc6c9124006f128a82e6c38cdf3e",
    )


# ---------------------------------------------------------------------------------------
# Tag ordering
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.25.3", "1.25.10", -1),
        ("1.9.15", "1.10.0", -1),
        ("v1.31.0", "v1.30.2", 1),
        ("v1.31.0", "1.31.0", 0),
        ("1.25.3", "1.25.3", 0),
        ("3.5.15-0", "3.5.6-0", 1),
        ("3.5.15-0", "3.5.15-1", -1),
        ("1.25-alpine", "1.26-alpine", -1),
        ("1.25-alpine", "1.26", None),
        ("1.25-alpine", "1.25-alpine-slim", None),
        ("8.0.0-debian-12-r3", "8.0.0-debian-12-r10", -1),
        ("8.0.1-debian-12-r0", "8.0.0-debian-12-r10", 1),
        ("8.0.0-debian-12-r3", "8.0.0-debian-11-r3", None),
        ("2.0.0-rc.1", "2.0.0", -1),
        ("2.0.0-rc.1", "2.0.0-rc.2", -1),
        ("2.0.0-beta.9", "2.0.0-rc.1", -1),
        ("2.0.0-alpha", "2.0.0-beta", -1),
        ("2.0.0-rc.1", "1.9.9", 1),
        ("1.0.0-beta3", "1.0.0-beta10", -1),
        ("20240101", "20240215", -1),
        ("20240101", "5", None),  # a date is not major version 20240101
        ("202401011200", "20240102", None),
        ("1.25", "1.25.3", None),  # 1.25 is some 1.25.x
        ("1.25", "1.26.0", -1),
        ("1.25", "1.24.9", 1),
        ("latest", "1.0", None),
        ("stable", "stable", None),
        ("main", "1.0", None),
        ("48f316cd", "48f316ce", None),
        ("0208ead", "1.0", None),
        ("sha-1234567", "sha-1234568", None),
        ("v20230330-48f316cd", "v20250512-df8de77b", -1),
        ("v20230330-48f316cd", "v20230330-5a5a5a5a", None),  # same date, other commit
        ("v3.2.0-10-g0208ead", "v3.2.0-11-gb85335c", -1),
        ("v3.2.0-10-g0208ead", "v3.2.0-10-g17a8c8f", None),
        ("v3.2.0", "v3.2.0-6-g2d0df1d", -1),
        ("", "1.0", None),
        ("1.0 ", "1.0", 0),
    ],
)
def test_compare_tags(a: str, b: str, expected: int | None) -> None:
    assert compare_tags(a, b) == expected
    assert compare_tags(b, a) == (None if expected is None else -expected)


@pytest.mark.parametrize(
    ("tag", "floating"),
    [
        (None, True),
        ("latest", True),
        ("stable", True),
        ("main", True),
        ("master", True),
        ("edge", True),
        ("nightly", True),
        ("stable-alpine", True),
        ("mainline-alpine3.24", True),
        ("Latest", True),
        ("1.25", False),
        ("v1.31.0", False),
        ("alpine", False),
        ("latest1", False),
    ],
)
def test_is_floating_tag(tag: str | None, floating: bool) -> None:
    assert is_floating_tag(tag) is floating


def _manifest_tags(path: Path) -> list[str]:
    """Tags in an official-images library file, new ("Tags: a, b") or legacy ("a: url") form."""
    tags: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("Tags:"):
            tags.extend(t.strip() for t in line[5:].split(","))
        elif re.match(r"[\w][\w.-]*: *git://", line):
            tags.append(line.split(":", 1)[0])
    return tags


_FULL = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")


def _sorted_versions(tags: list[str]) -> list[str]:
    def order(a: str, b: str) -> int:
        return compare_tags(a, b) or 0

    return sorted(tags, key=functools.cmp_to_key(order))


@pytest.mark.parametrize("image", ["nginx", "redis"])
@pytest.mark.parametrize("flavour", ["", "-alpine"])
def test_official_image_history_order(image: str, flavour: str) -> None:
    """Versions sort consistently with twelve years of release history.

    Within each x.y series, a version first seen in an earlier yearly snapshot sorts lower;
    and the newest version of each snapshot never goes down from one year to the next.
    """
    snapshots = sorted((FIXTURES / "official-images/history").glob(f"{image}@*.txt"))
    assert len(snapshots) >= 12
    first_seen: dict[str, int] = {}
    newest: list[str] = []
    for index, path in enumerate(snapshots):
        full = [
            t.removesuffix(flavour)
            for t in _manifest_tags(path)
            if t.endswith(flavour) and _FULL.fullmatch(t.removesuffix(flavour))
        ]
        if not full:
            continue
        for tag in full:
            first_seen.setdefault(tag, index)
        ordered = _sorted_versions([t + flavour for t in full])
        for a, b in itertools.pairwise(ordered):
            assert compare_tags(a, b) == -1
        newest.append(ordered[-1])
    assert len(newest) >= 8
    for older, newer in itertools.pairwise(newest):
        assert compare_tags(older, newer) in (-1, 0), (older, newer)
    series: dict[str, list[str]] = {}
    for tag in first_seen:
        series.setdefault(tag.rsplit(".", 1)[0], []).append(tag)
    for tags in series.values():
        for a in tags:
            for b in tags:
                if first_seen[a] < first_seen[b]:
                    assert compare_tags(a + flavour, b + flavour) == -1, (a, b)
    # Every version ever published, against plain integer tuples (1.9.x < 1.10.x).
    union = [t + flavour for t in first_seen]
    by_numbers = sorted(union, key=lambda t: [int(x) for x in t.removesuffix(flavour).split(".")])
    assert _sorted_versions(sorted(union)) == by_numbers
    assert len(union) > 20


def test_official_nginx_current_minor_tags() -> None:
    tags = _manifest_tags(FIXTURES / "official-images/nginx.txt")
    assert "1.31.4" in tags
    assert "1.30.4" in tags
    assert compare_tags("1.30.4", "1.31.4") == -1
    assert compare_tags("1.30", "1.31") == -1
    assert compare_tags("1.31", "1.31.4") is None
    assert compare_tags("1.31.4-alpine-slim", "1.30.4-alpine-slim") == 1
    assert compare_tags("1.31.4-alpine-slim", "1.30.4-alpine") is None


def _registry_tags(name: str) -> list[str]:
    tags: list[str] = json.loads((FIXTURES / "registry-tags" / name).read_text())["tags"]
    return tags


def test_kube_state_metrics_versions_follow_upload_time() -> None:
    data = json.loads((FIXTURES / "registry-tags/kube_state_metrics.json").read_text())
    by_upload = [
        tag
        for manifest in sorted(data["manifest"].values(), key=lambda m: int(m["timeUploadedMs"]))
        for tag in manifest["tag"]
    ]
    assert len(by_upload) == len(data["tags"]) == 17
    assert _sorted_versions(data["tags"]) == by_upload
    for a, b in itertools.pairwise(by_upload):
        assert compare_tags(a, b) == -1


def test_git_describe_tags_order_by_commit_count() -> None:
    tags = _registry_tags("git_describe.json")
    for a in tags:
        for b in tags:
            ma = re.fullmatch(r"v([0-9.]+)-([0-9]+)-g[0-9a-f]+", a)
            mb = re.fullmatch(r"v([0-9.]+)-([0-9]+)-g[0-9a-f]+", b)
            assert ma
            assert mb
            if a == b:
                expected: int | None = 0
            elif ma[1] != mb[1]:
                expected = (
                    -1
                    if [int(x) for x in ma[1].split(".")] < [int(x) for x in mb[1].split(".")]
                    else 1
                )
            elif ma[2] == mb[2]:
                expected = None  # two builds the same distance from the tag
            else:
                expected = -1 if int(ma[2]) < int(mb[2]) else 1
            assert compare_tags(a, b) == expected, (a, b)


def test_real_tag_lists() -> None:
    node = _registry_tags("node_alpine.json")
    assert compare_tags(node[0], node[3]) == -1  # 18.0.0-alpine3.17 < 20.0.0-alpine3.17
    assert compare_tags("18.0.0-alpine3.17", "18.0.0-bullseye") is None
    ubuntu = _registry_tags("ubuntu_no_latest.json")
    assert {"14.04.1", "14.04.5", "1234567890", "artful-20170601"} <= set(ubuntu)
    assert compare_tags("14.04.1", "14.04.5") == -1
    assert compare_tags("14.04", "14.04.1") is None
    assert compare_tags("1234567890", "1234567891") == -1
    assert compare_tags("1234567890", "16.04") is None
    assert compare_tags("artful-20170511.1", "artful-20170601") == -1
    assert compare_tags("artful-20170601", "precise-20170331") is None
    php = set(_registry_tags("php.json"))
    assert {"7.0.0beta2", "7.0.0RC1", "7.0.0RC8", "7.0.0"} <= php
    assert _sorted_versions(["7.0.0", "7.0.0RC8", "7.0.0beta2", "7.0.0RC1"]) == [
        "7.0.0beta2",
        "7.0.0RC1",
        "7.0.0RC8",
        "7.0.0",
    ]
    assert compare_tags("7.0.0RC1-apache", "7.0.0-apache") == -1
    assert compare_tags("7.0.0RC1-apache", "7.0.0-fpm") is None
    python = [t for t in _registry_tags("python.json") if re.fullmatch(r"3\.6\.0(?:[abrc]+\d)?", t)]
    assert _sorted_versions(sorted(python)) == [
        "3.6.0a2",
        "3.6.0a3",
        "3.6.0a4",
        "3.6.0b1",
        "3.6.0b2",
        "3.6.0b3",
        "3.6.0b4",
        "3.6.0rc1",
        "3.6.0rc2",
        "3.6.0",
    ]


_ALL_REAL_TAGS = sorted(
    {
        tag
        for name in (
            "php.json",
            "python.json",
            "ubuntu.json",
            "dotnet_page_1.json",
            "dotnet_page_2.json",
            "git_describe.json",
            "node_alpine.json",
        )
        for tag in _registry_tags(name)
    }
    | {t for p in (FIXTURES / "official-images").rglob("*.txt") for t in _manifest_tags(p)}
)


def test_real_tags_are_antisymmetric() -> None:
    sample = _ALL_REAL_TAGS[::7]
    assert len(sample) > 300
    for a in sample:
        assert compare_tags(a, a) in (0, None)
        for b in sample:
            ab, ba = compare_tags(a, b), compare_tags(b, a)
            assert ab == (None if ba is None else -ba), (a, b)


_real_tag = st.sampled_from(_ALL_REAL_TAGS)


@settings(max_examples=500)
@given(_real_tag, _real_tag, _real_tag)
def test_real_tags_are_transitive(a: str, b: str, c: str) -> None:
    if compare_tags(a, b) == -1 and compare_tags(b, c) == -1:
        assert compare_tags(a, c) == -1
    if compare_tags(a, b) == 0 and compare_tags(b, c) is not None:
        assert compare_tags(a, c) == compare_tags(b, c)


# Generated versions ----------------------------------------------------------------------

_pre = st.one_of(
    st.just(""),
    st.builds(
        lambda label, n: f"-{label}.{n}",
        st.sampled_from(["alpha", "beta", "rc"]),
        st.integers(0, 3),
    ),
    st.builds(lambda label, n: f"{label}{n}", st.sampled_from(["a", "b", "rc"]), st.integers(1, 3)),
)
_generated_tag = st.builds(
    lambda v, release, pre, rev, flavour: f"{v}{'.'.join(map(str, release))}{pre}{rev}{flavour}",
    st.sampled_from(["", "v"]),
    st.lists(st.integers(0, 12), min_size=1, max_size=4),
    _pre,
    st.sampled_from(["", "-0", "-1", "-r2", "-12-g0a1b2c3"]),
    st.sampled_from(["", "-alpine", "-debian-12", "-alpine3.19"]),
)


@given(_generated_tag, _generated_tag)
def test_generated_antisymmetry(a: str, b: str) -> None:
    ab, ba = compare_tags(a, b), compare_tags(b, a)
    assert ab == (None if ba is None else -ba)
    assert compare_tags(a, a) == 0


@settings(max_examples=300)
@given(_generated_tag, _generated_tag, _generated_tag)
def test_generated_transitivity(a: str, b: str, c: str) -> None:
    ab, bc, ac = compare_tags(a, b), compare_tags(b, c), compare_tags(a, c)
    if ab is not None and bc is not None and ab == bc and ab != 0:
        assert ac == ab, (a, b, c)
    if ab == 0:
        assert ac == bc


_release = st.lists(st.integers(0, 200), min_size=3, max_size=3)


@given(_release, _release, st.sampled_from(["", "-alpine", "-bookworm"]))
def test_plain_releases_order_like_integer_tuples(a: list[int], b: list[int], flavour: str) -> None:
    tag_a = ".".join(map(str, a)) + flavour
    tag_b = ".".join(map(str, b)) + flavour
    expected = (a > b) - (a < b)
    assert compare_tags(tag_a, tag_b) == expected
    assert compare_tags("v" + tag_a, tag_b) == expected


@given(_release, st.sampled_from(["-rc.1", "-beta.2", "a1", "-alpha", "rc3"]))
def test_pre_release_sorts_before_release_and_revision_after(release: list[int], pre: str) -> None:
    base = ".".join(map(str, release))
    assert compare_tags(base + pre, base) == -1
    assert compare_tags(base + "-1", base) == 1
    bumped = ".".join(map(str, [*release[:2], release[2] + 1]))
    assert compare_tags(base, bumped + pre) == -1
