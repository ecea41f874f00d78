"""Registry integrity check, against a real 2.8 registry and a mock transport."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from infraops.registry_gc.gc_output import parse_gc_output
from infraops.registry_gc.integrity import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    BasicCredentials,
    BrokenReference,
    IntegrityCheckError,
    IntegrityReport,
    check_registry_integrity,
)
from tests.lab.registry import (
    RegistryLab,
    StandardScenario,
    populate_standard,
    registry_available,
)

CHILDREN = ("multi:amd64", "multi:arm64", "multi-oci:amd64", "multi-oci:arm64")
Standard = tuple[RegistryLab, StandardScenario]


@pytest.fixture(scope="module")
def standard(tmp_path_factory: pytest.TempPathFactory) -> Standard:
    if not registry_available():
        pytest.skip("docker-registry binary not installed")
    lab = RegistryLab(tmp_path_factory.mktemp("integrity-golden"))
    with lab:
        scenario = populate_standard(lab)
    return lab, scenario


@pytest.fixture
def lab(standard: Standard, tmp_path: Path) -> Iterator[RegistryLab]:
    """A stopped registry on a private copy of the standard storage."""
    copy = standard[0].copy_storage_to(tmp_path)
    yield copy
    copy.stop()


@pytest.mark.lab
class TestRealRegistry:
    async def test_clean_storage_is_ok(self, lab: RegistryLab) -> None:
        """Every tag, child manifest and blob of the standard scenario resolves."""
        lab.start()

        report = await check_registry_integrity(lab.url)

        assert report.ok, report.broken
        assert report.repositories == 5
        assert report.tags_checked == 5  # lab/deleted has no tags left
        assert report.manifests_checked == 9  # 5 tags + 4 index children
        assert report.blobs_checked == 15

    async def test_small_pages_still_see_everything(self, lab: RegistryLab) -> None:
        """Catalog pagination through Link headers reaches every repository."""
        lab.start()

        report = await check_registry_integrity(lab.url, page_size=2, concurrency=1)

        assert report.repositories == 5
        assert report.tags_checked == 5

    async def test_delete_untagged_breaks_multi_arch_children(
        self, lab: RegistryLab, standard: Standard
    ) -> None:
        """After 2.8 GC -m every index child is gone while the index still resolves."""
        scenario = standard[1]

        gc = parse_gc_output(lab.run_gc(delete_untagged=True).stdout)
        lab.start()
        report = await check_registry_integrity(lab.url)

        assert (gc.blobs_marked, gc.blobs_eligible, gc.manifests_eligible) == (
            16,
            14,
            5,
        )
        assert not report.ok
        assert {(b.repository, b.digest) for b in report.broken} == {
            (scenario.manifests[key].repository, scenario.digest(key))
            for key in CHILDREN
        }
        assert {(b.kind, b.status_code, b.error) for b in report.broken} == {
            ("child-manifest", 404, "MANIFEST_UNKNOWN")
        }
        assert {b.reference for b in report.broken} == {"latest"}

    async def test_plain_gc_keeps_everything_pullable(self, lab: RegistryLab) -> None:
        """Plain GC only removes what the API delete orphaned."""
        gc = parse_gc_output(lab.run_gc().stdout)
        lab.start()

        report = await check_registry_integrity(lab.url)

        assert (gc.blobs_marked, gc.blobs_eligible, gc.manifests_eligible) == (
            27,
            3,
            0,
        )
        assert report.ok, report.broken
        assert report.blobs_checked == 15

    async def test_missing_child_layer_is_caught(
        self, lab: RegistryLab, standard: Standard
    ) -> None:
        """A child image whose layer data vanished is reported as a broken layer."""
        child = standard[1].manifests["multi-oci:arm64"]
        (layer,) = [d for d in child.blobs if d != _config_digest(lab, child.digest)]
        lab.blob_data_path(layer).unlink()
        lab.start()

        report = await check_registry_integrity(lab.url)

        assert report.broken == (
            BrokenReference(
                repository="lab/multi-oci",
                reference="latest",
                digest=layer,
                kind="layer",
                status_code=404,
            ),
        )

    async def test_missing_child_revision_link_is_caught(
        self, lab: RegistryLab, standard: Standard
    ) -> None:
        """A child manifest without its revision link is a broken child manifest."""
        child = standard[1].manifests["multi:amd64"]
        lab.revision_link_path("lab/multi", child.digest).unlink()
        lab.start()

        report = await check_registry_integrity(lab.url)

        assert [(b.kind, b.digest, b.status_code) for b in report.broken] == [
            ("child-manifest", child.digest, 404)
        ]

    async def test_shared_missing_layer_is_reported_per_tag(
        self, lab: RegistryLab, standard: Standard
    ) -> None:
        """A base layer shared by two tags is one HEAD but two findings."""
        v1, v2 = standard[1].manifests["app:v1"], standard[1].manifests["app:v2"]
        (base,) = set(v1.blobs) & set(v2.blobs)
        lab.blob_data_path(base).unlink()
        lab.start()

        report = await check_registry_integrity(lab.url)

        assert report.blobs_checked == 15
        assert [(b.reference, b.kind) for b in report.broken] == [
            ("v1", "layer"),
            ("v2", "layer"),
        ]

    async def test_unreachable_registry_raises(self, lab: RegistryLab) -> None:
        """No registry listening is an error, not an empty, healthy report."""
        with pytest.raises(IntegrityCheckError, match="catalog"):
            await check_registry_integrity(lab.url, request_timeout=2)


def _config_digest(lab: RegistryLab, manifest_digest: str) -> str:
    document = json.loads(lab.blob_data_path(manifest_digest).read_bytes())
    return str(document["config"]["digest"])


# --- mock transport: auth, pagination safety, timeouts, concurrency ----------

IMAGE = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"digest": "sha256:c0", "size": 1, "mediaType": "x"},
        "layers": [
            {"digest": f"sha256:1{i}", "size": 1, "mediaType": "x"} for i in range(6)
        ],
    }
).encode()


def _registry_app(
    *, password: str | None = None, delay: float = 0.0, link: str | None = None
) -> tuple[httpx.MockTransport, dict[str, int]]:
    """A tiny registry: one repository, one tag, one image with 7 blobs."""
    stats = {"in_flight": 0, "max_in_flight": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            await asyncio.sleep(delay)
            return _route(request, password=password, link=link)
        finally:
            stats["in_flight"] -= 1

    return httpx.MockTransport(handler), stats


def _route(
    request: httpx.Request, *, password: str | None, link: str | None
) -> httpx.Response:
    if password is not None:
        expected = httpx.BasicAuth("ops", password)._auth_header
        if request.headers.get("Authorization") != expected:
            return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
    path = request.url.path
    if path == "/v2/_catalog":
        headers = {"Link": f'<{link}>; rel="next"'} if link else {}
        return httpx.Response(200, json={"repositories": ["r"]}, headers=headers)
    if path == "/v2/r/tags/list":
        return httpx.Response(200, json={"name": "r", "tags": ["t"]})
    if path == "/v2/r/manifests/t":
        return httpx.Response(
            200, content=IMAGE, headers={"Content-Type": DOCKER_MANIFEST}
        )
    if path.startswith("/v2/r/blobs/"):
        return httpx.Response(200)
    return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND"}]})


class TestMockTransport:
    async def test_credentials_are_sent(self) -> None:
        """Basic-auth credentials reach the registry on every request."""
        transport, _ = _registry_app(password="s3cret-pw")
        credentials = BasicCredentials(username="ops", password=SecretStr("s3cret-pw"))

        report = await check_registry_integrity(
            "http://registry.test", credentials=credentials, transport=transport
        )

        assert report.ok
        assert report.blobs_checked == 7

    async def test_refused_credentials_raise_without_the_secret(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A 401 is an error that names neither the password nor leaks it to logs."""
        transport, _ = _registry_app(password="right")
        credentials = BasicCredentials(username="ops", password=SecretStr("wrong-pw"))
        caplog.set_level(logging.DEBUG)

        with pytest.raises(IntegrityCheckError, match="credentials") as caught:
            await check_registry_integrity(
                "http://registry.test", credentials=credentials, transport=transport
            )

        assert "wrong-pw" not in str(caught.value)
        assert "wrong-pw" not in repr(credentials)
        assert "wrong-pw" not in caplog.text

    async def test_concurrency_is_bounded(self) -> None:
        """No more requests are in flight than the semaphore allows."""
        transport, stats = _registry_app(delay=0.01)

        await check_registry_integrity(
            "http://registry.test", concurrency=2, transport=transport
        )

        assert stats["max_in_flight"] == 2

    async def test_total_timeout_raises(self) -> None:
        """A walk that cannot finish in time fails instead of hanging."""
        transport, _ = _registry_app(delay=0.2)

        with pytest.raises(IntegrityCheckError, match="did not finish within"):
            await check_registry_integrity(
                "http://registry.test", total_timeout=0.3, transport=transport
            )

    async def test_pagination_to_another_origin_is_refused(self) -> None:
        """A Link header never carries the credentials to a foreign host."""
        transport, _ = _registry_app(link="http://evil.test/v2/_catalog?last=r")

        with pytest.raises(IntegrityCheckError, match="another origin"):
            await check_registry_integrity("http://registry.test", transport=transport)

    async def test_unsupported_media_type_is_broken(self) -> None:
        """A manifest the check cannot interpret fails closed."""

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/manifests/t"):
                return httpx.Response(
                    200,
                    json={"schemaVersion": 1, "name": "r"},
                    headers={"Content-Type": "application/json"},
                )
            return _route(request, password=None, link=None)

        report = await check_registry_integrity(
            "http://registry.test", transport=httpx.MockTransport(handler)
        )

        assert [b.kind for b in report.broken] == ["tag"]
        assert "unsupported manifest media type" in (report.broken[0].error or "")

    async def test_child_with_wrong_content_is_broken(self) -> None:
        """A child manifest whose bytes do not hash to its digest is broken."""
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"digest": "sha256:" + "0" * 64, "size": 2}],
        }

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/manifests/t"):
                return httpx.Response(
                    200, json=index, headers={"Content-Type": OCI_INDEX}
                )
            if "/manifests/sha256:" in request.url.path:
                return httpx.Response(200, content=IMAGE)
            return _route(request, password=None, link=None)

        report = await check_registry_integrity(
            "http://registry.test", transport=httpx.MockTransport(handler)
        )

        assert [b.kind for b in report.broken] == ["child-manifest"]
        assert "does not match its digest" in (report.broken[0].error or "")

    def test_report_round_trips_and_is_frozen(self) -> None:
        """The report can travel as a Temporal payload and cannot be changed."""
        report = IntegrityReport(
            repositories=1,
            tags_checked=1,
            manifests_checked=1,
            blobs_checked=0,
            broken=(
                BrokenReference(repository="r", reference="t", digest=None, kind="tag"),
            ),
        )

        assert IntegrityReport.model_validate_json(report.model_dump_json()) == report
        assert not report.ok
        with pytest.raises(ValueError, match="frozen"):
            report.repositories = 2  # type: ignore[misc]
