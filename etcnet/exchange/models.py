"""What the front servers keep: the counterparts' registered certificates.

A `PartyCertificate` is a counterpart's SM2 certificate (the national center, a
bank, or our own signer's, so that our statements verify too), registered by an
operator from a file the counterpart handed over out of band. A message is
verified against the certificate its signature names (party and serial); an old
certificate stays registered so that what it signed still verifies.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PartyKind(models.TextChoices):
    SELF = "self", _("This center")
    NATIONAL = "national", _("National center")
    BANK = "bank", _("Bank")


class PartyCertificate(models.Model):
    party = models.CharField(max_length=16)  # the certificate's subject (party id)
    party_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=PartyKind.choices)
    serial = models.CharField(max_length=16)
    public_key = models.CharField(max_length=128)  # hex, 64 bytes
    fingerprint = models.CharField(max_length=64)  # SM3 of the certificate's body
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    body = models.TextField()  # the certificate as handed over (canonical JSON)
    registered_at = models.DateTimeField()
    registered_by = models.CharField(max_length=150)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["party", "serial"], name="exchange_cert_party_serial")
        ]
        ordering = ["party", "serial"]

    def __str__(self) -> str:
        return f"{self.party} {self.serial}"
