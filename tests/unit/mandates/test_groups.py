"""The groups of applications a mandate covers: config/mandate_groups.toml and its checks."""
from __future__ import annotations

import pytest

from access.catalogue import PortalKind, load_catalogue
from mandates.groups import DEFAULT_GROUPS, load_groups, parse_groups


def test_the_configured_groups(catalogue):
    groups = load_groups()
    codes = [group.code for group in groups.all()]
    assert {"dmfa_dimona", "asr", "personeelsbestand"} <= set(codes)
    applications = [app for group in groups.all() for app in group.applications]
    assert len(applications) == len(set(applications))
    for app in applications:
        assert catalogue.get(app) is not None and catalogue.get(app).portal is not PortalKind.INTERNAL
        assert app in groups.group_of(app).applications
    # The federal portal's applications are no part of a secretariat's automatic access.
    assert [g.code for g in groups.all() if not g.secretariat_default] == ["onderneming_federaal"]
    assert groups.secretariat_defaults() == [g for g in groups.all() if g.code != "onderneming_federaal"]
    assert groups.get("no_such_group") is None and groups.group_of("toegangsbeheer") is None
    asr = groups.get("asr")
    assert (asr.name("nl"), asr.name("fr"), asr.name("en")) == (
        "ASR (sociale risico's)", "DRS (risques sociaux)", "ASR (social risks)")
    assert asr.name("de") == asr.name("nl")


def _group(code: str, applications: list[str]) -> str:
    apps = ", ".join(f'"{app}"' for app in applications)
    return (f'[[group]]\ncode = "{code}"\nsecretariat_default = true\napplications = [{apps}]\n'
            f'name = {{ nl = "{code}" }}\n\n')


@pytest.mark.parametrize("content, message", [
    (_group("a", ["dmfa", "no_such_application"]), "unknown application 'no_such_application'"),
    (_group("a", ["toegangsbeheer"]), "unknown application 'toegangsbeheer'"),  # the portal's own function
    (_group("a", ["dmfa"]) + _group("b", ["dmfa"]), "'dmfa' is in two groups"),
    (_group("a", ["dmfa"]) + _group("a", ["asr"]), "duplicate group code"),
])
def test_a_wrong_groups_file_is_refused(tmp_path, content, message):
    path = tmp_path / "groups.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        parse_groups(path, load_catalogue())


def test_a_right_groups_file(tmp_path):
    path = tmp_path / "groups.toml"
    path.write_text(_group("a", ["dmfa", "asr"]), encoding="utf-8")
    groups = parse_groups(path, load_catalogue())
    assert [(g.code, g.applications) for g in groups.all()] == [("a", ("dmfa", "asr"))]
    assert parse_groups(DEFAULT_GROUPS, load_catalogue()).get("asr") is not None
