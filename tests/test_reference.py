"""The reference pages in docs/ say what the code does."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from ledger.readmodels.kpis.report import DEPARTMENT_KPIS, ENTERPRISE_KPIS, EVERY_DEPARTMENT
from ledger.reference import EVENTS_PAGE, events_page

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_event_vocabulary_page_is_generated_from_the_models() -> None:
    assert EVENTS_PAGE.read_text(encoding="utf-8") == events_page(), (
        "docs/EVENTS.md is out of date: run `python -m ledger.reference`"
    )


def test_the_kpi_page_defines_every_kpi_the_ledger_reports_and_no_other() -> None:
    text = (DOCS / "KPIS.md").read_text(encoding="utf-8")
    table = re.search(r"## The KPIs\n(.*?)\n\n", text, re.S)
    assert table is not None
    defined = set(re.findall(r"^\| `([a-z_]+)` \|", table.group(1), re.M))
    reported = {k for ks in DEPARTMENT_KPIS.values() for k in ks}
    assert defined == reported | set(EVERY_DEPARTMENT) | set(ENTERPRISE_KPIS)


SPEC_REFERENCE = re.compile(r"SPEC ?§|SPEC\.md|§ ?[0-9]")


def test_no_user_facing_text_sends_readers_to_a_document_they_do_not_have() -> None:
    """README, docs/, the OpenAPI document and every command's --help stand on their own."""
    from typer.main import get_command

    from ledger.api.app import create_app
    from ledger.cli import app as cli
    from ledger.settings import Settings

    root = DOCS.parent
    texts = {
        str(p): p.read_text(encoding="utf-8") for p in [root / "README.md", *DOCS.glob("*.md")]
    }
    texts["/openapi.json"] = orjson.dumps(create_app(Settings()).openapi()).decode()
    command = get_command(cli)
    for name, sub in {"ledger": command, **getattr(command, "commands", {})}.items():
        texts[f"{name} --help"] = " ".join(
            [sub.help or "", *(getattr(p, "help", None) or "" for p in sub.params)]
        )
        for inner, leaf in getattr(sub, "commands", {}).items():
            texts[f"{name} {inner} --help"] = " ".join(
                [leaf.help or "", *(getattr(p, "help", None) or "" for p in leaf.params)]
            )
    cited = {where for where, text in texts.items() if SPEC_REFERENCE.search(text)}
    assert not cited
