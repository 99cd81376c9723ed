"""The ledger app on the ``other`` alias (its own test database, ``TEST["NAME"]``)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from ledger.models import Account, Entry


@pytest.mark.django_db(databases=["other"])
def test_accounts_seeded_on_other() -> None:
    assert sorted(Account.objects.values_list("code", flat=True)) == ["bank", "cash"]


@pytest.mark.django_db(databases=["default", "other"])
@pytest.mark.parametrize("amount", ["1.00", "2.50"])
def test_entries_and_users(amount: str) -> None:
    account = Account.objects.get(code="cash")
    Entry.objects.create(account=account, amount=Decimal(amount), memo="test")
    User.objects.create_user("alice", password="x")
    assert Entry.objects.count() == 1
    assert User.objects.count() == 1
