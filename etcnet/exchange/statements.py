"""Signed statements (对账单): a counterparty's statement of issue 10 as PDF and
Excel, each signed by the signature server, handed over in one zip with the
signatures beside the files and our certificate (docs/exchange.md), so that
the counterparty verifies what it was given against the certificate it
registered."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from etcnet.clearing import statements
from etcnet.clearing.reports.tables import Period
from etcnet.exchange import signing

__all__ = ["Signed", "signed"]


@dataclass(frozen=True)
class Signed:
    filename: str  # the zip's name
    data: bytes  # the zip


def signed(period: Period, kind: str, counterparty_id: str) -> Signed:
    """The statement as PDF and Excel with their signatures, zipped. Raises
    `statements.NoStatement`, or `signing.SignerUnavailable` (nothing handed out
    unsigned)."""
    found = statements.build(period, kind, counterparty_id)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for suffix, data in (("pdf", statements.pdf(found)), ("xlsx", statements.xlsx(found))):
            name = f"{found.filename}.{suffix}"
            signature = signing.sign(data, purpose=f"statement {name}")
            archive.writestr(name, data)
            archive.writestr(f"{name}.sig", signature.to_json())
        archive.writestr("certificate.json", signing.certificate().to_json())
    return Signed(f"{found.filename}.zip", out.getvalue())
