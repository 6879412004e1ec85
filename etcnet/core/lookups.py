"""`field__any=[...]`: membership in a long list as one parameter.

`field__in=[...]` sends one placeholder per value: for the intake's look-ups of a
whole upload (a thousand sequences or card numbers) Django prepares each value
and the driver splits and binds a thousand parameters. On PostgreSQL `__any`
sends the list as one array, `field = ANY(%s)`; elsewhere (SQLite) it is
`__in`. Values are prepared by the field as for `__in`; an empty list matches
nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models import Field
from django.db.models.lookups import In

# Fields whose prepared value (`get_prep_value`, done for every lookup) is what
# psycopg sends: no per-value database preparation.
_AS_IS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "CharField",
        "IntegerField",
        "PositiveBigIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SmallIntegerField",
        "TextField",
    }
)


_INTEGERS = frozenset(name for name in _AS_IS if "Integer" in name or "Auto" in name)


class AnyOf(In):  # type: ignore[type-arg]
    lookup_name = "any"

    def get_prep_lookup(self) -> Any:
        # A thousand whole numbers for an integer column (or texts for a text
        # column) are what the field would make of them: not prepared one by one.
        internal = self.lhs.output_field.get_internal_type()
        if isinstance(self.rhs, list | tuple | set | frozenset) and internal in _AS_IS:
            wanted = int if internal in _INTEGERS else str
            if all(type(v) is wanted for v in self.rhs):
                return list(self.rhs)
        return super().get_prep_lookup()

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [v for v in self.rhs if v is not None]
        if not values:
            raise EmptyResultSet
        field = self.lhs.output_field
        if field.get_internal_type() in _AS_IS:
            prepared = values  # already the field's Python value, which the driver takes
        else:
            prepared = [field.get_db_prep_value(v, connection) for v in values]
        # Typed as the column: an array of another type (psycopg sends small
        # integers as smallint[]) cannot use the column's index.
        array_type = field.cast_db_type(connection)
        param: Any = prepared
        if all(type(v) is int for v in prepared):
            # Whole numbers as the array's text: the driver's quoting of a
            # thousand values costs more than the query.
            param = "{" + ",".join(map(str, prepared)) + "}"
        return f"{lhs} = ANY(%s::{array_type}[])", [*lhs_params, param]


def register() -> None:
    Field.register_lookup(AnyOf)
