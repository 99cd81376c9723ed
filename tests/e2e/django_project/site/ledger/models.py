from __future__ import annotations

from django.db import models


class Account(models.Model):
    code = models.CharField(max_length=20, unique=True)


class Entry(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="entries")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    memo = models.CharField(max_length=200, blank=True)
