"""Secrets come from git-ignored files whose committed examples cannot be deployed as is."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from terapi_common.crypto import KeyRing, KeyRingError
from tests.unit.deploy import kube

EXAMPLES = sorted(kube.SECRETS.glob("*.env.example"))


def example_values(path) -> dict[str, str]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_examples_provide_every_secret_setting():
    names = {name for path in EXAMPLES for name in example_values(path)}
    assert names == {"TERAPI_DATABASE_URL", "TERAPI_AMQP_URL", "TERAPI_ENCRYPTION_KEY"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_value_is_marked_to_be_replaced(path):
    for name, value in example_values(path).items():
        assert "REPLACE_ME" in value, name


def test_example_encryption_key_is_refused_at_boot():
    (path,) = [p for p in EXAMPLES if "TERAPI_ENCRYPTION_KEY" in example_values(p)]
    with pytest.raises(KeyRingError):
        KeyRing.from_spec(example_values(path)["TERAPI_ENCRYPTION_KEY"])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_real_secret_files_are_ignored_by_git(path):
    git = shutil.which("git")
    if git is None or not (kube.REPO / ".git").exists():
        pytest.skip("not a git checkout")
    real = path.with_suffix("")
    result = subprocess.run(  # noqa: S603  # fixed arguments, a read-only git command
        [git, "-C", str(kube.REPO), "check-ignore", "-q", str(real)], check=False
    )
    assert result.returncode == 0, f"{real} would be committed"
