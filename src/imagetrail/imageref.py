"""Container image references: parse, normalise, classify what runtimes report, order tags.

The grammar is the one of github.com/distribution/reference (``reference.go`` and
``normalize.go``)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]          host: dns-name | "[" ipv6 "]"
    path-comp  := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex        (sha256: 64, sha384: 96, sha512: 128 lowercase hex)

A first component is a domain only if it contains ``.`` or ``:``, is ``localhost`` or has
an upper-case letter; otherwise the registry is ``docker.io`` and one-component names get
``library/``. The normalised name is at most 255 characters.

Container runtimes and metric labels also report things that are not references: bare image
ids (``sha256:<hex>``, ``<64 hex>``), ``docker-pullable://`` and ``docker://`` prefixes,
empty strings. :func:`classify` sorts those out without raising; :func:`parse` is strict.
See docs/image-references.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from imagetrail.errors import ImageRefError

DEFAULT_REGISTRY = "docker.io"
NAME_TOTAL_LENGTH_MAX = 255
UNKNOWN_IMAGE = "<unknown>"

_LEGACY_DEFAULT_REGISTRY = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
# Longest valid reference: 255 (name) + 129 (":" tag) + 136 ("@sha512:" hex). Anything much
# longer is rejected before any regular expression runs on it.
_MAX_INPUT = 600
_SHOWN_MAX = 80

# Python's \w is Unicode-aware; the Go grammar's \w is ASCII, hence explicit classes.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_IPV6_HOST = re.compile(r"\[[A-Fa-f0-9:]+\]")
_PORT = re.compile(r"[0-9]+")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HEX = re.compile(r"[a-f0-9]+")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
# go-digest registers exactly these algorithms; others are "unsupported" there too.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_RUNTIME_SCHEMES = ("docker-pullable://", "docker://")
# "sha256:<hex>" is also a valid reference (repository "sha256", tag "<hex>"), but no
# runtime means that: such values are ids, or broken ids.
_DIGEST_LIKE = re.compile(r"(?:sha256|sha384|sha512):[A-Fa-f0-9]*")


def _shown(value: str) -> str:
    """The value as quoted in error messages: repr (escapes newlines, quotes), truncated."""
    if len(value) > _SHOWN_MAX:
        return f"{value[:_SHOWN_MAX]!r}... ({len(value)} characters)"
    return repr(value)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A normalised image reference: ``registry/repository[:tag][@digest]``.

    Build it with :func:`parse`; the constructor does not validate.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, e.g. ``docker.io/library/nginx``."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The short form ``docker`` shows: ``nginx:1.25``, ``kindest/kindnetd:v1``."""
        base = self.name
        first = self.repository.split("/", 1)[0]
        # Docker Hub namespaces never look like hosts, but a parsed "docker.io/a.b/c" would
        # reparse with registry "a.b" if shortened: keep such names whole.
        if self.registry == DEFAULT_REGISTRY and "." not in first and first != "localhost":
            base = self.repository
            short = base.removeprefix(_OFFICIAL_PREFIX)
            if short != base and "/" not in short:
                base = short
        if self.tag is not None:
            base += f":{self.tag}"
        if self.digest is not None:
            base += f"@{self.digest}"
        return base

    @property
    def display(self) -> str:
        """``name:tag`` when there is a tag, else ``name@digest``, else ``name``."""
        if self.tag is not None:
            return f"{self.name}:{self.tag}"
        if self.digest is not None:
            return f"{self.name}@{self.digest}"
        return self.name


def _digest_problem(digest: str) -> str | None:
    """Why ``digest`` is not ``algorithm:hex`` (None when it is valid)."""
    algorithm, sep, hexpart = digest.partition(":")
    if not sep:
        return "a digest must look like sha256:<64 hex characters>"
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        return f"unsupported digest algorithm {algorithm[:20]!r} (sha256, sha384, sha512)"
    if len(hexpart) != expected or not _HEX.fullmatch(hexpart):
        return f"a {algorithm} digest needs exactly {expected} lower-case hex characters"
    return None


def _domain_problem(domain: str) -> str | None:
    """Why ``domain`` is not ``host[:port]`` (None when it is valid)."""
    if domain.startswith("["):
        host, _, rest = domain.partition("]")
        host += "]"
        port_sep, port = rest[:1], rest[1:]
        if not _IPV6_HOST.fullmatch(host) or (rest and port_sep != ":"):
            return f"invalid registry host {domain!r}"
    else:
        host, port_sep, port = domain.partition(":")
        if not all(_DOMAIN_COMPONENT.fullmatch(part) for part in host.split(".")):
            return f"invalid registry host {domain!r}"
    if port_sep and not _PORT.fullmatch(port):
        return f"invalid registry port in {domain!r}"
    return None


def _split_domain(name: str) -> tuple[str, str]:
    """normalize.go splitDockerDomain: which part of ``name`` is the registry."""
    first, slash, rest = name.partition("/")
    is_domain = slash and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    if is_domain:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_REGISTRY, name
    if domain == _LEGACY_DEFAULT_REGISTRY:
        domain = DEFAULT_REGISTRY
    if domain == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = _OFFICIAL_PREFIX + remainder
    return domain, remainder


def _fail(value: str, problem: str) -> ImageRefError:
    return ImageRefError(
        f"not an image reference: {_shown(value)}: {problem}",
        hint="expected [registry/]repository[:tag][@sha256:<digest>], e.g. nginx:1.25",
    )


def parse(value: str) -> ImageRef:
    """Parse and normalise an image reference strictly.

    Raises :class:`~imagetrail.errors.ImageRefError` quoting the value and saying what is
    wrong. ``nginx:1.25`` gives ``docker.io/library/nginx:1.25``.
    """
    if not value:
        raise _fail(value, "the value is empty")
    if len(value) > _MAX_INPUT:
        raise _fail(value, "too long to be an image reference")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise _fail(value, "contains whitespace or control characters")
    if _IDENTIFIER.fullmatch(value):
        raise _fail(value, "a 64-character hex string is an image id, not a reference")
    name_tag, at, digest = value.partition("@")
    if at:
        problem = _digest_problem(digest)
        if problem is not None:
            raise _fail(value, problem)
    tag: str | None = None
    name = name_tag
    colon = name_tag.rfind(":")
    # A ':' after the last '/' separates the tag; before it, it is a registry port.
    if colon >= 0 and "/" not in name_tag[colon + 1 :]:
        name, tag = name_tag[:colon], name_tag[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise _fail(
                value, f"invalid tag {tag[:40]!r} (letters, digits, '_', '.', '-'; max 128)"
            )
    if not name:
        raise _fail(value, "the repository name is empty")
    registry, repository = _split_domain(name)
    problem = _domain_problem(registry)
    if problem is not None:
        raise _fail(value, problem)
    if repository.lower() != repository:
        raise _fail(value, "the repository name must be lower-case")
    for component in repository.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise _fail(value, f"invalid repository path component {component[:40]!r}")
    if len(registry) + 1 + len(repository) > NAME_TOTAL_LENGTH_MAX:
        raise _fail(value, f"the repository name is longer than {NAME_TOTAL_LENGTH_MAX}")
    return ImageRef(registry, repository, tag, digest if at else None)


class RuntimeImageKind(StrEnum):
    """What a runtime-reported image value turned out to be."""

    REFERENCE = "reference"
    IMAGE_ID = "image-id"
    EMPTY = "empty"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class RuntimeImage:
    """An image value as a runtime or metric label reported it, classified."""

    raw: str
    kind: RuntimeImageKind
    ref: ImageRef | None = None
    image_id: str | None = None


def classify(value: str) -> RuntimeImage:
    """Classify a runtime-reported image value; never raises.

    Accepts references (``nginx:1.25``, ``repo@sha256:...``), ``docker-pullable://`` and
    ``docker://`` prefixes, bare image ids (``sha256:<hex>``, ``<64 hex>``), empty values.
    ``image_id`` is the id or the digest the value carries, when it carries one.
    """
    text = value.strip()
    if not text:
        return RuntimeImage(value, RuntimeImageKind.EMPTY)
    if len(text) > _MAX_INPUT:
        return RuntimeImage(value, RuntimeImageKind.INVALID)
    for scheme in _RUNTIME_SCHEMES:
        if text.startswith(scheme):
            text = text[len(scheme) :]
            break
    if _IDENTIFIER.fullmatch(text):
        return RuntimeImage(value, RuntimeImageKind.IMAGE_ID, image_id=f"sha256:{text}")
    if _DIGEST_LIKE.fullmatch(text):
        if _digest_problem(text) is None:
            return RuntimeImage(value, RuntimeImageKind.IMAGE_ID, image_id=text)
        return RuntimeImage(value, RuntimeImageKind.INVALID)
    try:
        ref = parse(text)
    except ImageRefError:
        return RuntimeImage(value, RuntimeImageKind.INVALID)
    return RuntimeImage(value, RuntimeImageKind.REFERENCE, ref=ref, image_id=ref.digest)


def resolve(image: str, image_id: str = "", image_spec: str = "") -> tuple[str, str | None]:
    """The most meaningful ``(display, digest)`` for a kube-state-metrics/cAdvisor triple.

    ``display`` is the normalised display of ``image`` (what ran) when it is a reference;
    else of ``image_spec`` (what the pod asked for), else of ``image_id``; else the raw
    value, or ``<unknown>``. ``digest`` is the repository digest from ``image_id``, else from
    ``image``, else from ``image_spec``; a bare image id is not a repository digest. Never
    raises.
    """
    reported = classify(image)
    spec = classify(image_spec)
    ident = classify(image_id)
    for candidate in (reported, spec, ident):
        if candidate.ref is not None:
            display = candidate.ref.display
            break
    else:
        raw = next((v.strip() for v in (image, image_id, image_spec) if v.strip()), "")
        display = raw or UNKNOWN_IMAGE
    for candidate in (ident, reported, spec):
        if candidate.ref is not None and candidate.ref.digest is not None:
            return display, candidate.ref.digest
    return display, None


# Last path component of pod sandbox images: registry.k8s.io/pause, k8s.gcr.io/pause-amd64,
# rancher/mirrored-pause, OpenShift 3's pod-infrastructure / origin-pod.
_SANDBOX_COMPONENT = re.compile(
    r"(?:mirrored-)?pause(?:-(?:amd64|arm64|arm|ppc64le|s390x|windows|win))?"
    r"|pod-infrastructure|origin-pod|ose-pod"
)


def is_sandbox(ref_or_display: str) -> bool:
    """True for pod sandbox ("pause") images, which run no workload code."""
    ref = classify(ref_or_display).ref
    if ref is None:
        return False
    return bool(_SANDBOX_COMPONENT.fullmatch(ref.repository.rsplit("/", 1)[-1]))


# ---------------------------------------------------------------------------------------
# Tag ordering
# ---------------------------------------------------------------------------------------

_FLOATING_WORDS = frozenset(
    {
        "latest",
        "stable",
        "main",
        "master",
        "edge",
        "nightly",
        "mainline",
        "develop",
        "devel",
        "dev",
        "next",
        "canary",
        "unstable",
        "testing",
        "current",
        "lts",
        "head",
        "trunk",
        "rolling",
    }
)


def is_floating_tag(tag: str | None) -> bool:
    """True for channel tags that move (``latest``, ``stable-alpine``, ``main``) and no tag."""
    if tag is None:
        return True
    text = tag.strip().lower()
    if not text:
        return True
    return re.split(r"[-_.]", text, maxsplit=1)[0] in _FLOATING_WORDS


# Optional word prefix ("artful-"), optional "v", dotted numbers, then the rest.
_VERSION_HEAD = re.compile(r"(?P<prefix>(?:[a-z]+[-_])*)v?(?P<release>[0-9]+(?:\.[0-9]+)*)")
_PRE_RELEASE = re.compile(
    r"[-_.]?(?P<label>alpha|beta|preview|pre|rc|dev|snapshot|a|b)"
    r"(?:[-_.]?(?P<num>[0-9]+(?:\.[0-9]+)*))?(?=$|[-_])"
)
_PRE_RANK = {"dev": 0, "snapshot": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "pre": 3}
_PRE_RANK |= {"preview": 3, "rc": 4}
_GIT_DESCRIBE = re.compile(r"-(?P<count>[0-9]+)-g(?P<sha>[0-9a-f]{4,40})")
_REVISION_FIRST = re.compile(r"[-_](?P<num>[0-9]+)(?=$|[-_])")
_REVISION_LAST = re.compile(r"-r(?P<num>[0-9]+)$")
_HASH_LAST = re.compile(r"[-_.](?P<g>g?)(?P<sha>[0-9a-f]{7,40})$")
_HASHLIKE = re.compile(r"[0-9a-f]{7,64}")
_HASH_PREFIXES = frozenset({"sha-", "sha_", "git-", "commit-"})
_SERIAL_DIGITS = 6  # a first number this long is a date or build serial, not a major version


@dataclass(frozen=True, slots=True)
class _TagVersion:
    flavour: tuple[str, str, str]  # prefix, numbering scheme, suffix: must match to compare
    release: tuple[int, ...]
    pre: tuple[int, tuple[int, ...]] | None  # (label rank, numbers); None: a final release
    post: tuple[int, ...]  # build revision ("-0", "-r3") or commits since a git tag
    build: str | None  # a commit hash: same numbers, different hash are not ordered

    def key(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        pre_key = (1,) if self.pre is None else (0, self.pre[0], *self.pre[1])
        return (self.release, pre_key, self.post)


def _is_hashlike(text: str) -> bool:
    return bool(_HASHLIKE.fullmatch(text)) and any(c in "abcdef" for c in text)


@lru_cache(maxsize=8192)
def _tag_version(tag: str) -> _TagVersion | None:
    """Split a tag into comparable parts; None when it is not a version."""
    text = tag.strip().lower()
    if not text or len(text) > 128 or is_floating_tag(text):
        return None
    head = _VERSION_HEAD.match(text)
    if head is None or head["prefix"] in _HASH_PREFIXES:
        return None
    if _is_hashlike(text[len(head["prefix"]) :]):
        return None
    release_text = head["release"]
    release = tuple(int(part) for part in release_text.split("."))
    first_digits = len(release_text.split(".", 1)[0])
    scheme = f"serial{first_digits}" if first_digits >= _SERIAL_DIGITS else "version"
    rest = text[head.end() :]
    pre: tuple[int, tuple[int, ...]] | None = None
    match = _PRE_RELEASE.match(rest)
    if match is not None:
        numbers = tuple(int(n) for n in match["num"].split(".")) if match["num"] else ()
        pre = (_PRE_RANK[match["label"]], numbers)
        rest = rest[match.end() :]
    post: tuple[int, ...] = ()
    build: str | None = None
    if (match := _GIT_DESCRIBE.fullmatch(rest)) is not None:
        return _TagVersion(
            (head["prefix"], scheme, ""), release, pre, (int(match["count"]),), match["sha"]
        )
    if (match := _REVISION_FIRST.match(rest)) is not None:
        post = (int(match["num"]),)
        rest = rest[match.end() :]
    if (match := _REVISION_LAST.search(rest)) is not None:
        post = (*post, int(match["num"]))
        rest = rest[: match.start()]
    match = _HASH_LAST.search(rest)
    if match is not None and (match["g"] or any(c in "abcdef" for c in match["sha"])):
        build = match["sha"]
        rest = rest[: match.start()]
    return _TagVersion((head["prefix"], scheme, rest), release, pre, post, build)


def compare_tags(a: str, b: str) -> int | None:
    """Order two tags by version: -1, 0 or 1, or None when they are not comparable.

    Comparable means both are versions of the same flavour (same word prefix, same suffix
    such as ``-alpine``, same numbering scheme). A shorter release is a range
    (``1.25`` is some ``1.25.x``), so ``1.25`` vs ``1.25.3`` is None but ``1.25`` < ``1.26.0``.
    Pre-releases sort before the release, revisions (``-0``, ``-r3``, git-describe counts)
    after it. Floating tags (``latest``) and commit hashes are never comparable.
    """
    va, vb = _tag_version(a), _tag_version(b)
    if va is None or vb is None or va.flavour != vb.flavour:
        return None
    if len(va.release) != len(vb.release):
        for x, y in zip(va.release, vb.release, strict=False):
            if x != y:
                return -1 if x < y else 1
        return None  # one release is a prefix of the other: overlapping ranges
    ka, kb = va.key(), vb.key()
    if ka != kb:
        return -1 if ka < kb else 1
    if va.build != vb.build:
        return None
    return 0


__all__ = [
    "DEFAULT_REGISTRY",
    "NAME_TOTAL_LENGTH_MAX",
    "UNKNOWN_IMAGE",
    "ImageRef",
    "RuntimeImage",
    "RuntimeImageKind",
    "classify",
    "compare_tags",
    "is_floating_tag",
    "is_sandbox",
    "parse",
    "resolve",
]
