"""The import contracts guard the layout: an import against the architecture breaks one.

``lint-imports`` checks the tree as it is; this checks the contracts themselves. Each
back-import below is added to the real import graph, and the contracts of
pyproject.toml ([tool.importlinter]) must then report it broken — so a contract that
stopped guarding (a module renamed under it, an ignore grown too wide) fails here."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter.application.use_cases import read_user_options
from importlinter.configuration import configure
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"
CONTRACTS = {"forbidden": ForbiddenContract, "layers": LayersContract}
LAYERED = (
    "apps are layered: demo on top, then clearing, plates/tolling, terminal, cards, "
    "lists/network, issuance/smartcard, core"
)


@pytest.fixture(scope="module")
def linter() -> tuple[Any, list[Any]]:
    configure()
    options = read_user_options(str(PYPROJECT))
    graph = grimp.build_graph(
        *options.session_options["root_packages"], include_external_packages=True, cache_dir=None
    )
    contracts = [
        CONTRACTS[entry["type"]](
            name=entry["name"], session_options=options.session_options, contract_options=entry
        )
        for entry in options.contracts_options
    ]
    return graph, contracts


def broken(graph: Any, contracts: list[Any]) -> set[str]:
    return {c.name for c in contracts if not c.check(copy.deepcopy(graph), verbose=False).kept}


def test_the_tree_keeps_every_contract(linter: tuple[Any, list[Any]]) -> None:
    graph, contracts = linter
    assert broken(graph, contracts) == set()


@pytest.mark.parametrize(
    ("importer", "imported", "contract"),
    [
        ("etcnet.core.audit", "etcnet.lists.models", "core imports no app at all"),
        ("etcnet.core.audit", "etcnet.lists.models", LAYERED),
        ("etcnet.issuance.services", "etcnet.cards.services", LAYERED),
        ("etcnet.network.services", "etcnet.tolling.models", LAYERED),
        ("etcnet.cards.services.issuing", "etcnet.demo.loader", LAYERED),
        ("etcnet.tolling.intake", "etcnet.clearing.embedded", LAYERED),
        (
            "etcnet.clearing.embedded",
            "django.db",
            "clearing definitions and engines are pure: a Spark driver runs them without Django",
        ),
        (
            "etcnet.smartcard.ops",
            "etcnet.cards.devices",
            "smartcard is pure: no Django, nothing of etcnet but core",
        ),
        (
            "etcnet.terminal.lane.sync",
            "etcnet.tolling.services",
            "the terminal process imports no center app",
        ),
        (
            "etcnet.cards.services._common",
            "etcnet.cards.services.topup",
            "cards services: sections over _common",
        ),
        (
            "etcnet.terminal.lane._base",
            "etcnet.terminal.lane.reading",
            "terminal lane: reading > purchase > shifts, sync > _base",
        ),
        (
            "etcnet.terminal.statuslist.files",
            "etcnet.terminal.statuslist.compactlist",
            "terminal status list: compactlist > files, entries > snapshot > _base",
        ),
    ],
)
def test_a_back_import_breaks_its_contract(
    linter: tuple[Any, list[Any]], importer: str, imported: str, contract: str
) -> None:
    # given the real import graph, when one import against the layout is added
    graph, contracts = linter
    back = copy.deepcopy(graph)
    if importer not in back.modules:
        back.add_module(importer)
    back.add_import(importer=importer, imported=imported)
    # then the contract that forbids it is broken
    assert contract in broken(back, contracts)
