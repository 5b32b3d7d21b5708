"""The employer repertory: public search, the secured facts, and change proposals."""
from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import select

from access import operations as ops
from access.errors import Conflict, DomainError, NotFound, ValidationError
from access.validators import make_kbo
from repertory.models import ProposalStatus, RecordChange
from repertory.operations import (
    SEARCH_LIMIT,
    decide_proposal,
    get_proposal,
    pending_proposals,
    propose_change,
    search_employers,
    secured_facts,
)
from tests.factories import (
    acting_as,
    audit_records,
    make_local_admin,
    make_user_with_rights,
    table_snapshot,
)


@contextlib.contextmanager
def refused(session, error_class, field):
    before = table_snapshot(session)
    with pytest.raises(DomainError) as info:
        yield info
    assert type(info.value) is error_class, info.value.message
    assert info.value.field == field
    assert table_snapshot(session) == before


# --- search ------------------------------------------------------------------------------------

@pytest.fixture
def bakery(factories):
    return factories.Employer(kbo_number="0123456749", rsz_number="123456749", name="Bakkerij De Gouden Korst")


@pytest.fixture
def others(factories):
    return [factories.Employer(name="Garage Vermeulen"), factories.Employer(name="Brouwerij Het Anker"),
            factories.Enterprise(name="Bakkerij Zonder Personeel")]  # not an employer


def names(result):
    return [e.name for e in result]


def test_search_by_part_of_the_name_case_insensitively(db_session, bakery, others):
    assert names(search_employers(db_session, "gouden")) == ["Bakkerij De Gouden Korst"]
    assert names(search_employers(db_session, "BAKKERIJ")) == ["Bakkerij De Gouden Korst"]
    assert names(search_employers(db_session, "  korst ")) == ["Bakkerij De Gouden Korst"]


def test_search_returns_employers_only(db_session, bakery, others):
    assert "Bakkerij Zonder Personeel" not in names(search_employers(db_session, "bakkerij"))
    non_employer = others[2]
    assert search_employers(db_session, non_employer.kbo_number) == []


@pytest.mark.parametrize("query", ["0123456749", "0123.456.749", "123456749", "0123 456 749", "0123.456"])
def test_search_by_kbo_number(db_session, bakery, others, query):
    assert names(search_employers(db_session, query)) == ["Bakkerij De Gouden Korst"]


@pytest.mark.parametrize("query", ["123456749", "1234567-49", "1234567"])
def test_search_by_rsz_number(db_session, bakery, others, query):
    assert names(search_employers(db_session, query)) == ["Bakkerij De Gouden Korst"]


def test_search_finds_nothing_for_an_unknown_number(db_session, bakery, others):
    assert search_employers(db_session, make_kbo(9_999_999)) == []


def test_search_is_ordered_by_name_and_limited(db_session, factories):
    for n in range(SEARCH_LIMIT + 5):
        factories.Employer(name=f"Schrijnwerkerij {SEARCH_LIMIT + 5 - n:03d}")
    result = names(search_employers(db_session, "schrijnwerkerij"))
    assert len(result) == SEARCH_LIMIT == 50
    assert result == sorted(result)
    assert result[0] == "Schrijnwerkerij 001"


def test_search_treats_wildcards_as_text(db_session, factories, bakery, others):
    factories.Employer(name="Korting 50% BV")
    assert names(search_employers(db_session, "0%")) == ["Korting 50% BV"]
    assert search_employers(db_session, "__") == []


@pytest.mark.parametrize("query", ["", " ", "a", "x" * 101])
def test_search_refuses_too_short_or_too_long_text(db_session, bakery, query):
    with pytest.raises(ValidationError) as info:
        search_employers(db_session, query)
    assert info.value.field == "q"


def test_search_folds_the_case_of_accented_letters(db_session, factories):
    # Many Belgian enterprise names start with an accented capital ("Établissements ...").
    factories.Employer(name="Établissements Lambert")
    assert names(search_employers(db_session, "établissements")) == ["Établissements Lambert"]


# --- secured facts ---------------------------------------------------------------------------

def test_secured_facts_count_current_roles_and_rights(db_session, clock, ctx, bakery, catalogue):
    admin = make_local_admin(db_session, bakery, ctx)
    user = make_user_with_rights(db_session, bakery, ["dmfa", "asr"], by=admin.ctx, catalogue=catalogue)
    gone = make_user_with_rights(db_session, bakery, ["dmfa"], by=admin.ctx, catalogue=catalogue)
    ops.remove_member(db_session, bakery, gone.person, by=admin.ctx)
    facts = secured_facts(db_session, bakery)
    assert facts.local_admin is admin.person
    assert facts.users == 2  # the local administrator and the remaining user
    assert facts.rights == 2
    assert {link.person_id for link in facts.links} == {admin.person.id, user.person.id, gone.person.id}


# --- change proposals ---------------------------------------------------------------------------

@pytest.fixture
def proposer(db_session, clock, ctx, bakery, catalogue):
    admin = make_local_admin(db_session, bakery, ctx)
    return make_user_with_rights(db_session, bakery, ["wijzigingsvoorstellen"], by=admin.ctx, catalogue=catalogue,
                                 first_name="Bart", last_name="Janssens")


@pytest.fixture
def officer(db_session, ctx, factories):
    person = factories.Person(first_name="Olivia", last_name="Officier")
    return acting_as(ctx, person)


def test_propose_change_records_before_and_after_and_audits(db_session, clock, bakery, proposer):
    proposal = propose_change(db_session, bakery, {"street": "Markt 5", "city": "Gent", "name": ""},
                              "  verhuisd  ", by=proposer.ctx)
    assert proposal.status is ProposalStatus.PENDING
    assert proposal.changes == {"street": {"before": bakery.street, "after": "Markt 5"}}  # same city, no name
    assert proposal.motivation == "verhuisd"
    assert proposal.proposed_by_id == proposer.person.id
    assert bakery.street != "Markt 5"  # nothing changes before a portal officer accepts
    record = audit_records(db_session, "proposal.submit")[-1]
    assert (record.enterprise_id, record.application, record.actor_person_id) == (
        bakery.id, "wijzigingsvoorstellen", proposer.person.id)
    assert record.details == {"proposal_id": proposal.id, "changes": proposal.changes}
    assert pending_proposals(db_session) == [proposal]


@pytest.mark.parametrize(("values", "motivation", "field"), [
    ({}, None, "name"),
    ({"city": "Gent"}, None, "name"),  # the same value: no change
    ({"postal_code": "90000"}, None, "postal_code"),
    ({"joint_committee": "twee"}, None, "joint_committee"),
    ({"street": "Markt 5"}, "x" * 2001, "motivation"),
])
def test_invalid_proposals_are_refused(db_session, clock, bakery, proposer, values, motivation, field):
    with refused(db_session, ValidationError, field):
        propose_change(db_session, bakery, values, motivation, by=proposer.ctx)


def test_accepting_applies_the_change_and_records_its_history(db_session, clock, bakery, proposer, officer):
    old_street = bakery.street
    proposal = propose_change(db_session, bakery, {"street": "Markt 5", "joint_committee": "118"}, None,
                              by=proposer.ctx)
    clock.advance(days=1)
    decide_proposal(db_session, proposal, True, None, by=officer)
    assert (bakery.street, bakery.joint_committee) == ("Markt 5", "118")
    assert proposal.status is ProposalStatus.ACCEPTED
    assert (proposal.decided_by_id, proposal.decided_at) == (officer.actor_person_id, clock.now())
    change = db_session.scalars(select(RecordChange).where(RecordChange.enterprise_id == bakery.id)).one()
    assert (change.source, change.proposal_id, change.changed_by_id) == ("proposal", proposal.id,
                                                                         officer.actor_person_id)
    assert change.changes == {"street": {"before": old_street, "after": "Markt 5"},
                              "joint_committee": {"before": "200", "after": "118"}}
    record = audit_records(db_session, "proposal.accepted")[-1]
    assert record.actor_person_id == officer.actor_person_id
    assert record.details["proposal_id"] == proposal.id
    assert secured_facts(db_session, bakery).history == [change]
    assert pending_proposals(db_session) == []


def test_rejecting_needs_a_note_and_changes_nothing(db_session, clock, bakery, proposer, officer):
    proposal = propose_change(db_session, bakery, {"street": "Markt 5"}, None, by=proposer.ctx)
    for note in (None, "", "   "):
        with refused(db_session, ValidationError, "note"):
            decide_proposal(db_session, proposal, False, note, by=officer)
    with refused(db_session, ValidationError, "note"):
        decide_proposal(db_session, proposal, False, "x" * 2001, by=officer)
    street = bakery.street
    decide_proposal(db_session, proposal, False, "  Geen bewijs van de verhuis.  ", by=officer)
    assert proposal.status is ProposalStatus.REJECTED
    assert proposal.decision_note == "Geen bewijs van de verhuis."
    assert bakery.street == street
    assert db_session.scalars(select(RecordChange)).all() == []
    assert audit_records(db_session, "proposal.rejected")[-1].details["note"] == "Geen bewijs van de verhuis."


def test_a_decided_proposal_cannot_be_decided_again(db_session, clock, bakery, proposer, officer):
    accepted = propose_change(db_session, bakery, {"street": "Markt 5"}, None, by=proposer.ctx)
    decide_proposal(db_session, accepted, True, None, by=officer)
    rejected = propose_change(db_session, bakery, {"city": "Brugge", "postal_code": "8000"}, None, by=proposer.ctx)
    decide_proposal(db_session, rejected, False, "Nee.", by=officer)
    for proposal in (accepted, rejected):
        for accept, note in ((True, None), (False, "Toch niet.")):
            with refused(db_session, Conflict, "proposal") as info:
                decide_proposal(db_session, proposal, accept, note, by=officer)
            assert proposal.status.value in info.value.message


def test_a_stale_proposal_cannot_be_accepted_but_can_be_rejected(db_session, clock, bakery, proposer, officer):
    first = propose_change(db_session, bakery, {"street": "Markt 5"}, None, by=proposer.ctx)
    second = propose_change(db_session, bakery, {"street": "Veldstraat 9", "city": "Brugge"}, None, by=proposer.ctx)
    decide_proposal(db_session, first, True, None, by=officer)
    with refused(db_session, Conflict, "proposal") as info:
        decide_proposal(db_session, second, True, None, by=officer)
    assert "street" in info.value.message
    assert second.status is ProposalStatus.PENDING
    assert bakery.street == "Markt 5" and bakery.city == "Gent"
    decide_proposal(db_session, second, False, "Achterhaald.", by=officer)
    assert second.status is ProposalStatus.REJECTED


def test_a_proposal_on_other_fields_is_not_stale(db_session, clock, bakery, proposer, officer):
    first = propose_change(db_session, bakery, {"street": "Markt 5"}, None, by=proposer.ctx)
    second = propose_change(db_session, bakery, {"legal_form": "NV"}, None, by=proposer.ctx)
    decide_proposal(db_session, first, True, None, by=officer)
    decide_proposal(db_session, second, True, None, by=officer)
    assert (bakery.street, bakery.legal_form) == ("Markt 5", "NV")


def test_get_proposal(db_session, clock, bakery, proposer):
    proposal = propose_change(db_session, bakery, {"street": "Markt 5"}, None, by=proposer.ctx)
    assert get_proposal(db_session, proposal.id) is proposal
    with pytest.raises(NotFound) as info:
        get_proposal(db_session, proposal.id + 1000)
    assert info.value.field == "proposal"
