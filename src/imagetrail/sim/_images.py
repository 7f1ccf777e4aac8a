"""Image names and digests as a container runtime would report them (strings only; what a
simulated container reports is :func:`imagetrail.sim.types.reported_image` and its kin)."""

from __future__ import annotations

import hashlib

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def _split_digest(ref: str) -> tuple[str, str | None]:
    name, sep, digest = ref.partition("@")
    return name, (digest if sep else None)


def qualify(ref: str) -> str:
    """Fully qualify a pod-spec reference the way containerd reports it.

    ``nginx:1.25`` becomes ``docker.io/library/nginx:1.25``; a digest suffix is dropped
    (the runtime reports the tag it pulled).
    """
    name, _ = _split_digest(ref)
    first, slash, _rest = name.partition("/")
    if not slash:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def repository(ref: str) -> str:
    """``registry/repo`` of a reference, fully qualified, without tag or digest."""
    full = qualify(ref)
    slash = full.rfind("/")
    colon = full.rfind(":")
    return full[:colon] if colon > slash else full


def digest_for(image: str, push: int) -> str:
    """The repo digest the registry serves for ``image`` after its ``push``-th push.

    Deterministic: the same tag pushed the same number of times has the same digest in
    every cluster and every run; a re-push (``push`` + 1) gives a new one.
    """
    name, pinned = _split_digest(image)
    if pinned is not None:
        return pinned
    return "sha256:" + hashlib.sha256(f"{name}#{push}".encode()).hexdigest()


def config_id(digest: str) -> str:
    """The local image (config) id: what runtimes report as a bare ``sha256:`` image."""
    return "sha256:" + hashlib.sha256(f"config:{digest}".encode()).hexdigest()
