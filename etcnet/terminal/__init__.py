"""The terminal deployable: the process on a handheld or lane PC (issue 5).

``outbox`` is its store of committed transactions and the sync with the center;
it imports no Django, so the terminal's durability rules are tested on their own.
"""
