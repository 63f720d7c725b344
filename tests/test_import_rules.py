"""The one-way import rule (issue 13): `veloflux_site` imports no app, and the apps import each
other only downwards (tenants <- balancer <- billing | ai | cluster). The rule lives in
.importlinter; this runs it so bin/test fails on a forbidden import, not only CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run([exe, "--config", str(config), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def test_it_keeps_every_import_pointing_down():
    result = _lint_imports(ROOT / ".importlinter")
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_fails_when_the_project_package_imports_an_app(tmp_path):
    # The same contract without its ignore list must still see the composition root's imports:
    # proof that the linter reads this code base and would catch a new forbidden import.
    text = (ROOT / ".importlinter").read_text()
    strict = text.split("ignore_imports =")[0]
    config = tmp_path / "strict.importlinter"
    config.write_text(strict)
    result = _lint_imports(config)
    assert result.returncode == 1
    assert "veloflux_site.urls -> tenants.views" in result.stdout
