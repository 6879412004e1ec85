"""Status-list keys: a card or OBU number as one 64-bit integer, and list types
as a bit mask — what a lane's compact list stores (docs/lists.md).

Pure: no Django. Used by the center's publisher and by the terminal.

Layout of a key (unsigned, most significant bit first)::

    bit 63      medium: 0 card, 1 OBU
    bits 54–62  issuer index (0–511): a card's 4-digit network number, by the
                version's issuer table; 0 for an OBU
    bits 0–53   the 16-digit serial (card internal number, or OBU contract
                serial): 10**16 - 1 < 2**54

so keys sort by medium, issuer, serial, and one lookup is one integer search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "MAX_ISSUERS",
    "MEDIA",
    "TYPES",
    "IssuerTable",
    "ListKeyError",
    "decode_key",
    "mask_of",
    "types_of",
]

MEDIA = ("card", "obu")
#: List types 1–7 (reference Part 2 §3.4).
TYPES = range(1, 8)
MAX_ISSUERS = 512
_SERIAL_BITS = 54
_ISSUER_SHIFT = _SERIAL_BITS
_MEDIUM_SHIFT = 63
_SERIAL_MASK = (1 << _SERIAL_BITS) - 1


class ListKeyError(ValueError):
    """A number that cannot be a status-list key; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _digits(value: str, count: int, field: str) -> str:
    if not isinstance(value, str) or len(value) != count or not value.isascii():
        raise ListKeyError(field, f"must be {count} digits, got {value!r}")
    if not value.isdigit():
        raise ListKeyError(field, f"must be {count} digits, got {value!r}")
    return value


class IssuerTable:
    """Card network numbers (发行方路网编号, 4 digits) and their stable indexes.

    The center assigns an index the first time a network appears on the list and
    never reuses it; every version file carries the whole table so a terminal
    can encode the card it reads."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks: list[str] = []
        self._index: dict[str, int] = {}
        for network in networks:
            self.add(network)

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(self._networks)

    def __len__(self) -> int:
        return len(self._networks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IssuerTable) and self._networks == other._networks

    def __hash__(self) -> int:
        return hash(tuple(self._networks))

    def add(self, network: str) -> int:
        """The network's index, assigning the next one when it is new."""
        _digits(network, 4, "issuer")
        found = self._index.get(network)
        if found is not None:
            return found
        if len(self._networks) >= MAX_ISSUERS:
            raise ListKeyError("issuer", f"the table is full ({MAX_ISSUERS} networks)")
        self._index[network] = len(self._networks)
        self._networks.append(network)
        return self._index[network]

    def extends(self, older: IssuerTable) -> bool:
        """True when this table keeps every index of ``older`` (it may add more)."""
        return self._networks[: len(older._networks)] == older._networks

    def key(self, medium: str, medium_id: str, *, assign: bool = False) -> int | None:
        """The key of a card or OBU; None for a card whose network the table does
        not hold (it cannot be on the list) unless ``assign``."""
        if medium == "obu":
            return (1 << _MEDIUM_SHIFT) | int(_digits(medium_id, 16, "obu_no"))
        if medium != "card":
            raise ListKeyError("medium", f"must be card or obu, got {medium!r}")
        _digits(medium_id, 20, "card_no")
        network = medium_id[:4]
        if assign:
            index: int | None = self.add(network)
        else:
            index = self._index.get(network)
        if index is None:
            return None
        return (index << _ISSUER_SHIFT) | int(medium_id[4:])

    def keys(self, items: Sequence[tuple[str, str]], *, assign: bool = False) -> list[int | None]:
        return [self.key(medium, medium_id, assign=assign) for medium, medium_id in items]


def decode_key(key: int, issuers: IssuerTable) -> tuple[str, str]:
    """(medium, number) back from a key."""
    if not 0 <= key < 1 << 64:
        raise ListKeyError("key", f"must be an unsigned 64-bit integer, got {key}")
    serial = key & _SERIAL_MASK
    if serial > 10**16 - 1:
        raise ListKeyError("key", f"serial {serial} has more than 16 digits")
    if key >> _MEDIUM_SHIFT:
        if (key >> _ISSUER_SHIFT) & (MAX_ISSUERS - 1):
            raise ListKeyError("key", "an OBU key has no issuer index")
        return "obu", f"{serial:016d}"
    index = key >> _ISSUER_SHIFT
    if index >= len(issuers):
        raise ListKeyError("key", f"issuer index {index} is not in the table")
    return "card", issuers.networks[index] + f"{serial:016d}"


def mask_of(types: Iterable[int]) -> int:
    """List types 1–7 as a bit mask (type t is bit t − 1)."""
    mask = 0
    for list_type in types:
        if list_type not in TYPES:
            raise ListKeyError("type", f"must be 1 to 7, got {list_type!r}")
        mask |= 1 << (list_type - 1)
    return mask


def types_of(mask: int) -> tuple[int, ...]:
    """The list types of a bit mask, ascending."""
    return tuple(t for t in TYPES if mask >> (t - 1) & 1)
