"""The front server towards the province's banks (docs/banks.md).

One module a section: ``config`` (who the banks are, their addresses and the
settlement accounts), ``transport`` (the durable outbox and the verified,
idempotent intake over HTTPS), ``debits`` (the three-party agreement's daily
debit files, their results, recovery and status list type 4, and each bank's
cards' out-of-province usage), ``settlement`` (transfer instructions to the
settlement bank, its confirmations reconciled with the ledger, the chase of the
unconfirmed) and ``keys`` (the banks' shared keys into the key vault).
"""
