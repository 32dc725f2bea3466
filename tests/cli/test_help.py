"""Every command and flag of ``megam`` says what it does, in plain words."""

from __future__ import annotations

import argparse

from megam_cli.main import build_parser

JARGON = ("noofinstances", "predef")


def _parsers(parser: argparse.ArgumentParser, path: str = "megam"):  # type: ignore[no-untyped-def]
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_flag_and_argument_has_help() -> None:
    missing = [
        f"{path} {action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


def test_help_uses_no_api_jargon() -> None:
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert not [word for word in JARGON if word in text], path


def test_json_and_profile_are_accepted_after_any_client_command() -> None:
    args = build_parser().parse_args(["nodes", "list", "--json", "--profile", "work"])
    assert args.json is True and args.profile == "work"
    args = build_parser().parse_args(["--json", "--profile", "home", "nodes", "list"])
    assert args.json is True and args.profile == "home"


def test_launch_sends_no_count_unless_asked() -> None:
    assert build_parser().parse_args(["nodes", "launch", "a.b", "--cloud", "c"]).count is None
