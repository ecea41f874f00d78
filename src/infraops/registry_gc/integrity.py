"""Check that every tag of a running registry can still be pulled.

The check walks the registry's v2 HTTP API: the catalog, each repository's tags,
each tag's manifest, every child of an index or manifest list (by digest), and a
HEAD on every config and layer blob of every image manifest. A tag-level check
is not enough after garbage collection: distribution 2.8's
`--delete-untagged` keeps the index resolvable but removes its children
(docs/notes: registry-and-ssh.md, section 1).

Failures to *reach* the registry (catalog unreachable, credentials refused,
total timeout) raise `IntegrityCheckError`. Anything missing behind a tag is
recorded as a `BrokenReference` in the report.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

logger = logging.getLogger(__name__)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

INDEX_MEDIA_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
IMAGE_MEDIA_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
# Layers that live outside the registry (Windows base layers, for example).
_EXTERNAL_LAYER_MARKERS = ("foreign", "nondistributable")

BrokenKind = Literal["tag", "child-manifest", "config", "layer"]


class IntegrityCheckError(Exception):
    """The check could not complete, so the registry's state is unknown."""


class BasicCredentials(BaseModel):
    """Registry basic-auth credentials. The password never appears in reprs."""

    model_config = ConfigDict(frozen=True)

    username: str
    password: SecretStr


class BrokenReference(BaseModel):
    """Something a tag depends on that the registry does not serve."""

    model_config = ConfigDict(frozen=True)

    repository: str
    reference: str  # the tag through which the missing object was reached
    digest: str | None  # None when the tag itself does not resolve
    kind: BrokenKind
    status_code: int | None = None
    error: str | None = None


class IntegrityReport(BaseModel):
    """Counts of what was checked, and everything found broken."""

    model_config = ConfigDict(frozen=True)

    repositories: int
    tags_checked: int
    manifests_checked: int  # manifest GETs: one per tag plus one per distinct child
    blobs_checked: int  # distinct (repository, digest) blob HEADs
    broken: tuple[BrokenReference, ...]

    @property
    def ok(self) -> bool:
        return not self.broken


class _Fetched(BaseModel):
    """The outcome of one manifest GET."""

    model_config = ConfigDict(frozen=True)

    status_code: int | None
    error: str | None = None
    media_type: str | None = None
    document: dict[str, Any] | None = None
    digest: str | None = None


async def check_registry_integrity(
    base_url: str,
    *,
    credentials: BasicCredentials | None = None,
    concurrency: int = 8,
    total_timeout: float = 600.0,
    request_timeout: float = 30.0,
    page_size: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> IntegrityReport:
    """Walk every tag of the registry at `base_url` and report what is missing.

    At most `concurrency` HTTP requests are in flight at once. The whole walk
    must finish within `total_timeout` seconds.

    Raises:
        IntegrityCheckError: the catalog cannot be listed, the credentials are
            refused, or the walk does not finish in time.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")

    auth = (
        httpx.BasicAuth(credentials.username, credentials.password.get_secret_value())
        if credentials is not None
        else None
    )
    async with httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        timeout=request_timeout,
        transport=transport,
        follow_redirects=False,
    ) as client:
        checker = _Checker(client, concurrency=concurrency, page_size=page_size)
        logger.info("checking registry integrity at %s", base_url)
        try:
            async with asyncio.timeout(total_timeout):
                report = await checker.run()
        except TimeoutError:
            raise IntegrityCheckError(
                f"the integrity check of {base_url} did not finish within "
                f"{total_timeout:g}s; raise total_timeout or concurrency"
            ) from None

    logger.info(
        "registry %s: %d repositories, %d tags, %d manifests, %d blobs, %d broken",
        base_url,
        report.repositories,
        report.tags_checked,
        report.manifests_checked,
        report.blobs_checked,
        len(report.broken),
    )
    return report


class _Checker:
    """State of one walk: the semaphore, per-digest caches and the findings."""

    def __init__(
        self, client: httpx.AsyncClient, *, concurrency: int, page_size: int
    ) -> None:
        self._client = client
        self._semaphore = asyncio.Semaphore(concurrency)
        self._page_size = page_size
        self._children: dict[tuple[str, str], asyncio.Task[_Fetched]] = {}
        self._blobs: dict[tuple[str, str], asyncio.Task[_Fetched]] = {}
        self._broken: list[BrokenReference] = []
        self._tags = 0
        self._manifest_gets = 0

    async def run(self) -> IntegrityReport:
        repositories = await self._list_repositories()
        try:
            await _gather(self._check_repository(repo) for repo in repositories)
        except* IntegrityCheckError as group:
            raise _first_leaf(group) from None
        finally:
            self._cancel_pending()

        return IntegrityReport(
            repositories=len(repositories),
            tags_checked=self._tags,
            manifests_checked=self._manifest_gets,
            blobs_checked=len(self._blobs),
            broken=tuple(
                sorted(self._broken, key=lambda b: (b.repository, b.reference, b.kind))
            ),
        )

    # --- listing -------------------------------------------------------------

    async def _list_repositories(self) -> list[str]:
        try:
            pages = await self._paginate("/v2/_catalog", "repositories")
        except httpx.HTTPError as exc:
            raise IntegrityCheckError(
                f"cannot list the registry catalog: {_describe(exc)}"
            ) from None
        return pages

    async def _list_tags(self, repository: str) -> list[str]:
        try:
            return await self._paginate(f"/v2/{repository}/tags/list", "tags")
        except httpx.HTTPStatusError as exc:
            # A repository whose tags directory is gone (digest-only pushes,
            # or every tag deleted) answers NAME_UNKNOWN: it has no tags.
            if exc.response.status_code == 404:
                logger.info("repository %s has no tags", repository)
                return []
            raise IntegrityCheckError(
                f"cannot list the tags of {repository}: {_describe(exc)}"
            ) from None
        except httpx.HTTPError as exc:
            raise IntegrityCheckError(
                f"cannot list the tags of {repository}: {_describe(exc)}"
            ) from None

    async def _paginate(self, path: str, key: str) -> list[str]:
        """Collect `key` from every page, following `Link: <…>; rel="next"`."""
        items: list[str] = []
        url: str | None = path
        params: dict[str, int] | None = {"n": self._page_size}
        while url is not None:
            async with self._semaphore:
                response = await self._client.get(url, params=params)
            if response.status_code in (401, 403):
                raise IntegrityCheckError(
                    f"the registry refused access to {path} "
                    f"(HTTP {response.status_code}); check the credentials"
                )
            response.raise_for_status()
            items.extend(_json_list(response, key))
            url, params = self._next_page(response), None

        return items

    def _next_page(self, response: httpx.Response) -> str | None:
        link = response.links.get("next")
        if link is None or "url" not in link:
            return None
        target = response.request.url.join(link["url"])
        # Never send the credentials to another origin named in a Link header.
        if (target.scheme, target.host, target.port) != (
            self._client.base_url.scheme,
            self._client.base_url.host,
            self._client.base_url.port,
        ):
            raise IntegrityCheckError(
                f"the registry paginates to another origin ({target.host}); refusing"
            )
        return str(target)

    # --- walking -------------------------------------------------------------

    def _cancel_pending(self) -> None:
        for cache in (self._children, self._blobs):
            for task in cache.values():
                task.cancel()

    async def _check_repository(self, repository: str) -> None:
        tags = await self._list_tags(repository)
        await _gather(self._check_tag(repository, tag) for tag in tags)

    async def _check_tag(self, repository: str, tag: str) -> None:
        self._tags += 1
        fetched = await self._get_manifest(repository, tag)
        if fetched.document is None:
            self._report(repository, tag, None, "tag", fetched)
            return

        await self._check_document(repository, tag, fetched, "tag")

    async def _check_document(
        self, repository: str, tag: str, fetched: _Fetched, kind: BrokenKind
    ) -> None:
        document = fetched.document or {}
        media_type = _media_type_of(fetched.media_type, document)
        if media_type in INDEX_MEDIA_TYPES:
            children = _descriptor_digests(document.get("manifests"))
            await _gather(
                self._check_child(repository, tag, digest) for digest in children
            )
        elif media_type in IMAGE_MEDIA_TYPES:
            await self._check_image_blobs(repository, tag, document)
        else:
            error = f"unsupported manifest media type {media_type!r}"
            self._report(
                repository,
                tag,
                fetched.digest,
                kind,
                fetched.model_copy(update={"error": error}),
            )

    async def _check_child(self, repository: str, tag: str, digest: str) -> None:
        fetched = await self._cached(
            self._children, repository, digest, self._get_manifest
        )
        if fetched.document is None:
            self._report(repository, tag, digest, "child-manifest", fetched)
            return

        await self._check_document(repository, tag, fetched, "child-manifest")

    async def _check_image_blobs(
        self, repository: str, tag: str, document: dict[str, Any]
    ) -> None:
        wanted: list[tuple[str, BrokenKind]] = [
            (digest, "config")
            for digest in _descriptor_digests([document.get("config")])
        ]
        layers = document.get("layers")
        if isinstance(layers, list):
            internal = [layer for layer in layers if not _is_external(layer)]
            wanted += [(digest, "layer") for digest in _descriptor_digests(internal)]

        await _gather(
            self._check_blob(repository, tag, digest, kind) for digest, kind in wanted
        )

    async def _check_blob(
        self, repository: str, tag: str, digest: str, kind: BrokenKind
    ) -> None:
        fetched = await self._cached(self._blobs, repository, digest, self._head_blob)
        if fetched.status_code != 200:
            self._report(repository, tag, digest, kind, fetched)

    # --- HTTP ----------------------------------------------------------------

    async def _cached(
        self,
        cache: dict[tuple[str, str], asyncio.Task[_Fetched]],
        repository: str,
        digest: str,
        fetch: Callable[[str, str], Awaitable[_Fetched]],
    ) -> _Fetched:
        """Fetch each (repository, digest) once, however many tags reach it."""
        key = (repository, digest)
        if key not in cache:
            cache[key] = asyncio.ensure_future(fetch(repository, digest))
        return await cache[key]

    async def _get_manifest(self, repository: str, reference: str) -> _Fetched:
        self._manifest_gets += 1
        try:
            async with self._semaphore:
                response = await self._client.get(
                    f"/v2/{repository}/manifests/{reference}",
                    headers={"Accept": _ACCEPT},
                )
        except httpx.HTTPError as exc:
            return _Fetched(status_code=None, error=_describe(exc))
        if response.status_code != 200:
            return _Fetched(
                status_code=response.status_code, error=_registry_error(response)
            )

        return _parse_manifest(response, reference)

    async def _head_blob(self, repository: str, digest: str) -> _Fetched:
        try:
            async with self._semaphore:
                response = await self._client.head(f"/v2/{repository}/blobs/{digest}")
        except httpx.HTTPError as exc:
            return _Fetched(status_code=None, error=_describe(exc))

        return _Fetched(status_code=response.status_code)

    def _report(
        self,
        repository: str,
        tag: str,
        digest: str | None,
        kind: BrokenKind,
        fetched: _Fetched,
    ) -> None:
        logger.warning(
            "registry integrity: %s %s of %s:%s is broken (status %s, %s)",
            kind,
            digest or "-",
            repository,
            tag,
            fetched.status_code,
            fetched.error or "no error text",
        )
        self._broken.append(
            BrokenReference(
                repository=repository,
                reference=tag,
                digest=digest,
                kind=kind,
                status_code=fetched.status_code,
                error=fetched.error,
            )
        )


def _parse_manifest(response: httpx.Response, reference: str) -> _Fetched:
    body = response.content
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if reference.startswith("sha256:") and reference != digest:
        return _Fetched(
            status_code=response.status_code,
            error=f"manifest content does not match its digest (got {digest})",
        )
    try:
        document = json.loads(body)
    except ValueError:
        return _Fetched(status_code=response.status_code, error="manifest is not JSON")
    if not isinstance(document, dict):
        return _Fetched(
            status_code=response.status_code, error="manifest is not a JSON object"
        )

    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    return _Fetched(
        status_code=response.status_code,
        media_type=media_type or None,
        document=document,
        digest=digest,
    )


def _media_type_of(header_type: str | None, document: dict[str, Any]) -> str | None:
    """Trust the Content-Type when it is a manifest type, else the document."""
    known = INDEX_MEDIA_TYPES | IMAGE_MEDIA_TYPES
    if header_type in known:
        return header_type
    declared = document.get("mediaType")
    if isinstance(declared, str):
        return declared
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document and "layers" in document:
        return OCI_MANIFEST
    return header_type


def _json_list(response: httpx.Response, key: str) -> list[str]:
    """`key` of a listing body; a JSON null (no tags) counts as empty."""
    try:
        body = response.json()
    except ValueError:
        raise IntegrityCheckError(
            f"{response.request.url.path} did not answer with JSON"
        ) from None
    values = body.get(key) if isinstance(body, dict) else None
    if values is None:
        return []
    if not isinstance(values, list):
        raise IntegrityCheckError(
            f"{response.request.url.path} answered a non-list {key!r}"
        )
    return [str(value) for value in values]


def _descriptor_digests(descriptors: object) -> list[str]:
    """The digests of a list of descriptors; malformed entries are skipped."""
    if not isinstance(descriptors, list):
        return []
    return [
        descriptor["digest"]
        for descriptor in descriptors
        if isinstance(descriptor, dict) and isinstance(descriptor.get("digest"), str)
    ]


def _is_external(layer: object) -> bool:
    if not isinstance(layer, dict):
        return False
    media_type = str(layer.get("mediaType", ""))
    return any(marker in media_type for marker in _EXTERNAL_LAYER_MARKERS)


def _registry_error(response: httpx.Response) -> str | None:
    """The first error code of a registry error body, e.g. MANIFEST_UNKNOWN."""
    try:
        errors = response.json().get("errors") or []
        return str(errors[0]["code"]) if errors else None
    except (ValueError, AttributeError, KeyError, IndexError, TypeError):
        return None


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url.path}"
    return f"{type(exc).__name__}: {exc}"


async def _gather(coroutines: Iterable[Coroutine[Any, Any, None]]) -> None:
    async with asyncio.TaskGroup() as group:
        for coroutine in coroutines:
            group.create_task(coroutine)


def _first_leaf(group: BaseExceptionGroup[IntegrityCheckError]) -> IntegrityCheckError:
    """The first `IntegrityCheckError` inside nested task-group failures."""
    for exc in group.exceptions:
        if isinstance(exc, IntegrityCheckError):
            return exc
        return _first_leaf(exc)
    return IntegrityCheckError("the integrity check failed")
