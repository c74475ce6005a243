"""Roles: what each includes, who acts for which project, and keys stored before roles."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from watchkeeper.errors import Forbidden
from watchkeeper.server._auth import ADMIN_TOKEN, KeyRing, _hash
from watchkeeper.server._roles import MIGRATED_KEY_ROLE, Principal, Role, authorize
from watchkeeper.store.meta import MetaStore

ING, V, E, A = Role.INGEST, Role.VIEWER, Role.EDITOR, Role.ADMIN
GRANTS = {  # held -> the roles it includes
    ING: {ING},
    V: {V},
    E: {ING, V, E},
    A: {ING, V, E, A},
}


@pytest.mark.parametrize("held", list(Role))
@pytest.mark.parametrize("needed", list(Role))
def test_what_each_role_includes(held: Role, needed: Role) -> None:
    assert held.grants(needed) is (needed in GRANTS[held])


def test_a_key_acts_for_its_own_project_whatever_it_asks() -> None:
    key = Principal("key k1", {"shop": V})
    assert authorize(key, V, "other") == "shop"
    with pytest.raises(Forbidden, match="needs the editor role on project shop"):
        authorize(key, E, None)


def test_a_principal_of_several_projects_acts_for_the_one_it_asks() -> None:
    person = Principal("alice", {"shop": A, "lab": V})
    assert authorize(person, E, "shop") == "shop"
    with pytest.raises(Forbidden, match="editor role on project lab"):
        authorize(person, E, "lab")
    with pytest.raises(Forbidden, match="has no role"):
        authorize(person, V, "elsewhere")


def test_the_admin_token_reads_no_project() -> None:
    with pytest.raises(Forbidden, match="manages keys and people, and reads no project's data"):
        authorize(ADMIN_TOKEN, V, "shop")
    assert ADMIN_TOKEN.may_manage_keys("shop")


def test_a_person_is_told_to_ask_an_admin_and_a_key_how_to_make_one() -> None:
    person = Principal("person vic", {"shop": Role.VIEWER}, person=True)
    with pytest.raises(Forbidden, match="ask an admin of the project for the editor role"):
        authorize(person, Role.EDITOR, "shop")
    key = Principal("key 1a2b", {"shop": Role.VIEWER})
    with pytest.raises(Forbidden, match="watchkeeper keys create --role editor"):
        authorize(key, Role.EDITOR, "shop")


def test_keys_stored_before_roles_become_editors(meta_url: str) -> None:
    old_db = sa.create_engine(meta_url)
    with old_db.begin() as db:  # the table as it shipped before roles
        db.execute(
            sa.text(
                "CREATE TABLE api_keys (key_id VARCHAR(32) PRIMARY KEY, project VARCHAR(200) "
                "NOT NULL, name VARCHAR(200) NOT NULL, key_hash VARCHAR(64) NOT NULL UNIQUE, "
                "created_at FLOAT NOT NULL, revoked_at FLOAT)"
            )
        )
        db.execute(
            sa.text("INSERT INTO api_keys VALUES ('k1', 'shop', 'old', :hash, 1.0, NULL)"),
            {"hash": _hash("wk_old")},
        )
    old_db.dispose()
    meta = MetaStore(meta_url)
    meta.create_all()
    meta.create_all()  # a second start finds the column there
    ring = KeyRing(meta)
    (old,) = ring.list()
    assert old.role is MIGRATED_KEY_ROLE is Role.EDITOR
    principal = ring.principal_for("wk_old")
    assert principal is not None and principal.roles == {"shop": Role.EDITOR}
    new, _ = ring.create("shop", role=Role.INGEST)
    assert {k.key_id: k.role for k in ring.list()} == {"k1": E, new.key_id: ING}
    meta.close()
