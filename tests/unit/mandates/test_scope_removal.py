"""mandates.operations.remove_from_scope: the employer takes one application out of a mandate in force (an
access review's revocation). Refusals write nothing; the last application ends the mandate instead."""
from __future__ import annotations

from datetime import timedelta

import pytest

from access.errors import Conflict, NotFound
from mandates import operations as mops
from tests.unit.mandates.helpers import Q1_2027, Q4_2026, TODAY, Unchanged


def test_an_application_outside_the_scope_or_a_mandate_no_longer_in_force_is_refused(db_session, kit):
    employer, provider = kit.employer(), kit.provider()
    form = kit.accepted_form(employer, provider, start=Q4_2026, group_codes=("asr",))
    with Unchanged(db_session), pytest.raises(NotFound) as refused:
        mops.remove_from_scope(db_session, form, "dmfa", by=employer.ctx)
    assert refused.value.field == "application"
    mops.end_mandate(db_session, form, TODAY - timedelta(days=1), by=employer.ctx)
    with Unchanged(db_session), pytest.raises(Conflict, match="no longer in force"):
        mops.remove_from_scope(db_session, form, "asr", by=employer.ctx)
    pending = kit.file(kit.employer(), provider, start=Q1_2027)
    with Unchanged(db_session), pytest.raises(Conflict):
        mops.remove_from_scope(db_session, pending, "asr", by=employer.ctx)


def test_the_last_application_of_a_mandate_not_started_yet_ends_it_on_its_start_date(db_session, kit):
    employer, provider = kit.employer(), kit.provider()
    form = kit.accepted_form(employer, provider, start=Q1_2027, group_codes=("asr",))
    mops.remove_from_scope(db_session, form, "asr", by=employer.ctx, reason="why", path=["access review 1"])
    assert form.applications() == ["tijdelijke_werkloosheid"] and form.end_date is None  # two: only asr goes
    mops.remove_from_scope(db_session, form, "tijdelijke_werkloosheid", by=employer.ctx)
    assert form.end_date == Q1_2027  # the earliest end a mandate can have
    [record] = kit.audit("mandate.scope.remove")
    assert record.reason == "why" and record.path == ["access review 1"]
    assert record.details["after"]["groups"] == ["asr"]
