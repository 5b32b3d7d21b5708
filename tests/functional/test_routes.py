"""Acceptance 12: every route of the app is gated, self-gated or deliberately public;
and a non-public page never answers an anonymous visitor."""
from __future__ import annotations

from tests.functional.helpers import audit_since, last_audit_id, location_path

MARKERS = ("gate", "self_gated", "public")
# Gated, but on free-tier applications: anyone may use them.
FREE = {"repertory.search", "repertory.public_record", "api.repertory_search"}


def test_every_route_is_gated_or_marked_public(app):
    unmarked = sorted(endpoint for endpoint, view in app.view_functions.items()
                      if endpoint != "static" and not any(getattr(view, m, None) for m in MARKERS))
    assert unmarked == []
    # every endpoint of the url map has a view, and the walk above saw them all
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints <= set(app.view_functions)
    assert len(endpoints) > 40


def test_a_view_without_marker_would_be_found(app):
    """The check above can fail: an unmarked route is reported."""

    @app.route("/unmarked-probe")
    def unmarked_probe():
        return "x"

    unmarked = [e for e, v in app.view_functions.items() if e != "static" and not any(getattr(v, m, None)
                                                                                     for m in MARKERS)]
    assert unmarked == ["unmarked_probe"]


def test_anonymous_gets_no_non_public_page(app, world, visitor, db_session):
    """Every GET route that is not public and not free refuses an anonymous visitor and logs
    the decision; a self-gated view that forgot to call the decision point would fail here."""
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    values = {"enterprise_id": enterprise.id, "person_id": admin.id, "link_id": 1, "proposal_id": 1, "record_id": 1, "review_id": 1,
              "code": "dmfa", "application": "dmfa", "kbo": enterprise.kbo_number}
    anonymous = visitor()
    checked = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint == "static" or getattr(view, "public", False) or rule.endpoint in FREE:
            continue
        if "GET" not in rule.methods:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<int:{name}>", str(values[name])).replace(f"<{name}>", str(values[name]))
        start = last_audit_id(db_session)
        response = anonymous.get(path)
        refused = response.status_code in (401, 403) or (response.status_code == 302
                                                          and location_path(response) == "/login")
        assert refused, (rule.endpoint, path, response.status_code)
        decisions = [r for r in audit_since(db_session, start) if r.action.startswith("decision:")]
        assert [r.outcome for r in decisions] == ["denied"], (rule.endpoint, decisions)
        checked.append(rule.endpoint)
    assert len(checked) >= 12, checked
