"""Where the gateway finds the frontend SDK it serves at /sdk/*: checkout or image."""

from __future__ import annotations

from pathlib import Path

from terapi_gateway.connect_api import SDK_SOURCES, sdk_files

ROOT = Path(__file__).resolve().parents[3]
IMAGE_SDK_FOLDER = "/opt/terapi/share/terapi/sdk/"  # the image's venv is /opt/terapi


def test_a_source_checkout_serves_its_own_files(tmp_path: Path) -> None:
    for source in SDK_SOURCES.values():
        (tmp_path / "repo" / source).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "repo" / source).write_text("// sdk")
    found = sdk_files(repository=tmp_path / "repo", installed=tmp_path / "installed")
    assert found == {name: tmp_path / "repo" / source for name, source in SDK_SOURCES.items()}


def test_an_installed_gateway_serves_the_copies_beside_python(tmp_path: Path) -> None:
    """The image has no repository: pip put the gateway in site-packages."""
    found = sdk_files(repository=tmp_path / "absent", installed=tmp_path / "installed")
    assert found == {
        "terapi.js": tmp_path / "installed" / "terapi.js",
        "terapi.global.js": tmp_path / "installed" / "terapi.global.js",
    }


def test_the_image_copies_both_files_where_the_gateway_looks() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    copies = [line for line in dockerfile.splitlines() if line.endswith(IMAGE_SDK_FOLDER)]
    assert copies, "deploy/Dockerfile does not copy the SDK into the image"
    for source in SDK_SOURCES.values():
        path = f"sdks/frontend/{source.as_posix()}"
        assert path in copies[0].split()
        assert f"!{path}" in ignore
    assert 'python -m venv /opt/terapi' in dockerfile
