"""The README is the front door: it must match the code."""

from pathlib import Path

from core.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_documents_every_setting():
    missing = [e["env"] for e in Settings.documented() if f"`{e['env']}`" not in README]
    assert not missing, f"README's configuration table lacks {missing}"


def test_readme_quickstart_commands():
    assert "make up" in README and "make test" in README
