"""Fixtures of the access review tests: the mandate tests' `kit` (employers, providers, mandates through the
real operations) and `world`: one employer with its local administrator, two users with rights and a
provider form in force, ready to be reviewed."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from access.models import Role
from mandates.models import Mandate
from tests.factories import Member, make_member, make_user_with_rights
from tests.unit.mandates.conftest import cheap_initial_passwords, groups, kit  # noqa: F401  (pytest fixtures)
from tests.unit.mandates.helpers import Q4_2026, Kit, Party


@dataclass
class World:
    employer: Party
    provider: Party
    alice: Member   # user: dmfa, asr
    bob: Member     # user: dmfa
    co_admin: Member
    form: Mandate   # accepted provider form in force: group asr (asr, tijdelijke_werkloosheid)

    @property
    def admin(self) -> Member:
        return self.employer.admin


@pytest.fixture
def world(kit: Kit, db_session) -> World:  # noqa: F811
    employer = kit.employer(name="Bakkerij De Gouden Korst")
    admin_ctx = employer.admin.ctx
    alice = make_user_with_rights(db_session, employer.enterprise, ["dmfa", "asr"], by=admin_ctx,
                                  catalogue=kit.catalogue, first_name="Alice", last_name="Aerts")
    bob = make_user_with_rights(db_session, employer.enterprise, ["dmfa"], by=admin_ctx, catalogue=kit.catalogue,
                                first_name="Bob", last_name="Bogaert")
    co_admin = make_member(db_session, employer.enterprise, Role.CO_ADMIN, by=admin_ctx, first_name="Cato",
                           last_name="Cools")
    provider = kit.provider(name="Boekhouding Peeters")
    form = kit.accepted_form(employer, provider, start=Q4_2026, group_codes=("asr",))
    return World(employer, provider, alice, bob, co_admin, form)




