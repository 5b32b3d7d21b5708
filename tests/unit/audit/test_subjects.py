"""The data subject view's records (audit/subjects.py): whom a record is about is kept in its details
(chained) and mirrored into audit_record_subjects; a person sees the records about him that others
acted, never the records about anyone else."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from access import operations as ops
from access.clock import today
from audit.models import RecordSubject
from audit.operations import RequestContext, record
from audit.subjects import SUBJECTS_KEY, record_consultation, records_about
from tests.factories import audit_records, make_local_admin, make_user_with_rights


def _subjects_of(db_session, record_id: int) -> list[int]:
    return sorted(db_session.scalars(select(RecordSubject.person_id).where(RecordSubject.record_id == record_id)))


def test_record_keeps_its_subjects_in_the_details_and_the_index(db_session, clock, ctx, factories):
    one, two = factories.Person(), factories.Person()
    written = record(db_session, ctx, action="x.change", outcome="success", details={"k": 1},
                     subject_person_ids=[two.id, one.id, two.id, None])
    db_session.flush()
    assert written.details == {"k": 1, SUBJECTS_KEY: sorted([one.id, two.id])}
    assert _subjects_of(db_session, written.id) == sorted([one.id, two.id])


def test_a_record_without_subjects_has_no_index_rows(db_session, clock, ctx):
    written = record(db_session, ctx, action="x.other", outcome="success")
    db_session.flush()
    assert written.details is None and _subjects_of(db_session, written.id) == []


def test_the_operations_that_touch_a_person_name_him(db_session, clock, ctx, factories, catalogue):
    employer = factories.Employer()
    admin = make_local_admin(db_session, employer, ctx)
    user = make_user_with_rights(db_session, employer, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    ops.revoke_right(db_session, employer, user.person, "dmfa", by=admin.ctx)
    about_user = {r.action for r in audit_records(db_session) if r.id in
                  set(db_session.scalars(select(RecordSubject.record_id)
                                         .where(RecordSubject.person_id == user.person.id)))}
    assert about_user == {"role.designate_user", "right.grant", "right.revoke"}
    other = factories.Person()
    link = ops.add_link(db_session, employer, other, "werknemer", today(), None, by=ctx)
    ops.end_link(db_session, link, today(), by=ctx)
    assert {r.action for r in records_about(db_session, other.id).rows} == {"link.add", "link.end"}
    assert {"role.appoint_local_admin"} <= {r.action for r in records_about(db_session, admin.person.id).rows}


def test_the_index_is_append_only(db_session, clock, ctx, factories):
    person = factories.Person()
    written = record(db_session, ctx, action="x.change", outcome="success", subject_person_ids=[person.id])
    db_session.flush()
    for statement in ("UPDATE audit_record_subjects SET person_id = person_id",
                      "DELETE FROM audit_record_subjects WHERE record_id = :id"):
        with pytest.raises(DBAPIError, match="append-only"):
            with db_session.begin_nested():
                db_session.execute(text(statement), {"id": written.id})
    assert _subjects_of(db_session, written.id) == [person.id]


def test_a_person_sees_who_acted_about_him_with_names_and_the_provider(db_session, clock, ctx, factories):
    employee, staff, admin = factories.Person(), factories.Person(), factories.Person()
    employer, provider = factories.Enterprise(name="Bakkerij"), factories.Enterprise(name="Sociaal Secretariaat")
    by_staff = RequestContext(actor_person_id=staff.id, actor_label="staff1", provider_enterprise_id=provider.id)
    record(db_session, by_staff, action="x.declare", outcome="success", enterprise_id=employer.id,
           subject_person_ids=[employee.id])
    record(db_session, ctx.as_actor(admin.id, "admin1"), action="right.grant", outcome="success",
           enterprise_id=employer.id, subject_person_ids=[employee.id])
    record(db_session, ctx.as_actor(employee.id, "self"), action="x.own", outcome="success",
           subject_person_ids=[employee.id])  # his own act: not listed
    record(db_session, ctx.as_actor(admin.id, "admin1"), action="right.grant", outcome="success",
           enterprise_id=employer.id, subject_person_ids=[staff.id])  # about someone else
    db_session.flush()
    rows = records_about(db_session, employee.id).rows
    assert [(r.action, r.actor_name, r.enterprise_name, r.provider_name) for r in rows] == [
        ("right.grant", admin.full_name, "Bakkerij", None),
        ("x.declare", staff.full_name, "Bakkerij", "Sociaal Secretariaat")]
    assert rows[1].provider_kbo and rows[1].enterprise_kbo
    assert "id" not in rows[0].as_json() and rows[0].as_json()["actor"] == admin.full_name


def test_the_list_pages_newest_first(db_session, clock, ctx, factories):
    person = factories.Person()
    for n in range(5):
        clock.advance(minutes=1)
        record(db_session, ctx, action=f"x.{n}", outcome="success", subject_person_ids=[person.id])
    db_session.flush()
    first, second, third = (records_about(db_session, person.id, page=page, per_page=2) for page in (1, 2, 3))
    assert [r.action for r in first.rows + second.rows + third.rows] == ["x.4", "x.3", "x.2", "x.1", "x.0"]
    assert (first.has_next, second.has_next, third.has_next) == (True, True, False)


def test_a_consultation_names_the_persons_shown_but_not_the_viewer(db_session, clock, ctx, factories):
    viewer, shown = factories.Person(), factories.Person()
    written = record_consultation(db_session, ctx.as_actor(viewer.id, "v"), person_ids=[viewer.id, shown.id],
                                  enterprise_id=None, what="test page")
    db_session.flush()
    assert (written.action, _subjects_of(db_session, written.id)) == ("person.view", [shown.id])
    assert record_consultation(db_session, ctx.as_actor(viewer.id, "v"), person_ids=[viewer.id],
                               enterprise_id=None, what="own page") is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.sets(st.integers(0, 3), max_size=3)), min_size=1, max_size=12),
       viewer=st.integers(0, 3))
def test_a_person_never_sees_a_record_about_others_only(db_session, clock, ctx, factories, plan, viewer):
    """Property: the list is exactly the records naming him whose actor is someone else."""
    with db_session.begin_nested() as nested:
        people = [factories.Person() for _ in range(4)]
        expected = set()
        for actor, subjects in plan:
            written = record(db_session, ctx.as_actor(people[actor].id, f"p{actor}"), action="x.prop",
                             outcome="success", subject_person_ids=[people[s].id for s in subjects])
            db_session.flush()
            if viewer in subjects and actor != viewer:
                expected.add(written.id)
        shown = {row.id for row in records_about(db_session, people[viewer].id, per_page=100).rows}
        assert shown == expected
        nested.rollback()
