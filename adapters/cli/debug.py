"""Debugging commands: history, state, explain, replay, whatif.

"Why did this meeting not sync, and since when?" Each command resolves any id
a person has in hand (ledger meeting id, Exchange item id, iCalUId, Salesforce
Event id) to its meeting first.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from adapters.cli import render
from adapters.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    command,
    emit_json,
    open_store,
    positive,
)
from projections.explain import NotFound, explain, resolve
from projections.state import NotKnownYet, meeting_state
from projections.timeline import timeline


def _id_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", metavar="ID", help="ledger meeting id, Exchange item id, iCalUId, "
                                            "or Salesforce Event id (15 or 18 characters)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def _not_found(cmd: str, exc: NotFound) -> int:
    print(f"syncledger {cmd}: {exc}", file=sys.stderr)
    return EXIT_NOT_FOUND


@command("history", "a meeting's timeline: every observation and decision, field by field",
         _id_args)
def cmd_history(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        r = resolve(store, args.id)
        entries = timeline(store, r.meeting_id)
    except NotFound as exc:
        return _not_found("history", exc)
    finally:
        store.close()
    if args.json:
        emit_json(entries)
        return EXIT_OK
    print(f"meeting {r.meeting_id}\n")
    for e in entries:
        rule = f" [{e['rule']}]" if e["rule"] else ""
        version = f"v{e['version']}" if e["version"] is not None else "org"
        print(f"#{e['position']:<7} {e['time']}  {version:<5} {e['source']:<10} "
              f"{e['type']}{rule}")
        for name, value in list(e["changes"].items())[:12]:
            if isinstance(value, list) and len(value) == 2 and e["source"] != "decision":
                print(f"{'':16}{name}: {render.cell(value[0], 40)} -> {render.cell(value[1], 60)}")
            else:
                print(f"{'':16}{name}: {render.cell(value, 100)}")
    return EXIT_OK


def _state_args(p: argparse.ArgumentParser) -> None:
    _id_args(p)
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", metavar="TIME", help="as the ledger knew it at this ISO-8601 time")
    when.add_argument("--version", type=positive, metavar="N",
                      help="as of the meeting's version N (1 is its first event)")


@command("state", "a meeting as the ledger knew it now, at a time, or at a version",
         _state_args)
def cmd_state(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        r = resolve(store, args.id)
        at = None
        if args.at is not None:
            try:
                at = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
            except ValueError:
                print(f"syncledger state: --at {args.at!r} is not an ISO-8601 time",
                      file=sys.stderr)
                return EXIT_USAGE
            if at.tzinfo is None:
                print("syncledger state: --at needs a zone, e.g. 2026-11-20T12:00:00Z",
                      file=sys.stderr)
                return EXIT_USAGE
        try:
            view = meeting_state(store, r.meeting_id, version=args.version, at=at)
        except NotKnownYet as exc:
            print(f"syncledger state: {exc}", file=sys.stderr)
            return EXIT_NOT_FOUND
    except NotFound as exc:
        return _not_found("state", exc)
    finally:
        store.close()
    if args.json:
        emit_json(view)
    else:
        print(render.sections(view))
    return EXIT_OK


@command("explain", "is it synced? if not: the rule, a plain sentence, who can act, evidence",
         _id_args)
def cmd_explain(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        out = explain(store, args.id)
    except NotFound as exc:
        return _not_found("explain", exc)
    finally:
        store.close()
    if args.json:
        emit_json(out)
        return EXIT_OK
    print(f"{args.id}\n  meeting  {out['meeting_id'] or 'none yet (parked: syncledger parked)'}")
    print(f"  state    {out['state']}")
    if out["rule"]:
        print(f"  rule     {out['rule']}")
    why = render.wrap(out["message"], render.width() - 11) or [""]
    print(f"  why      {why[0]}")
    for line in why[1:]:
        print(f"{'':11}{line}")
    if out["action"]:
        print(f"  action   {out['action']}")
    for email, person in out["people"]["related"].items():
        print(f"  related  {email} -> {person['person_type']} {person['relation_id']}")
    for entry in out["people"]["unresolved"]:
        print(f"  unresolved {entry['email']} since {entry['since']}: {entry['why']}")
    print("  evidence")
    for e in out["evidence"]:  # one line each, the detail wrapped under it
        rule = f" [{e['rule']}]" if e["rule"] else ""
        print(f"    #{e['position']:<6} {e['time']}  {e['source']:<10} {e['type']}{rule}")
        for line in render.wrap(e["detail"], render.width() - 12) if e["detail"] else []:
            print(f"{'':12}{line}")
    if out["full_reads"]:
        print("  full reads (reconcile)")
    for read in out["full_reads"]:
        listed = ", ".join(read["listed"]) or "none of its copies (gone)"
        print(f"    {read['observed_at']} {read['source']:<10} {read['mailbox']} "
              f"{read['start']} .. {read['end']}: listed {render.cell(listed, 70)}")
    return EXIT_OK


def _replay_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--until", required=True, metavar="TIME",
                   help="ISO-8601 time with zone; events observed later are left out")
    p.add_argument("--db-out", required=True, metavar="URL",
                   help="an empty store to write the past ledger and its projections to")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


@command("replay", "write the ledger and its projections as they stood at TIME to another "
                   "database", _replay_args)
def cmd_replay(args: argparse.Namespace) -> int:
    from adapters.cli.common import open_target
    from adapters.progress import Progress
    from projections.replay import ReplayError, replay_until

    try:
        datetime.fromisoformat(args.until.replace("Z", "+00:00"))
    except ValueError:  # before the target exists: a typo leaves no empty file behind
        raise CliError(f"--until {args.until!r} is not an ISO-8601 time", EXIT_USAGE) from None
    source = open_store(args)
    try:
        target = open_target(args.db_out)
    except BaseException:
        source.close()
        raise
    bar = Progress("replay")
    try:
        out = replay_until(source, target, args.until, progress=bar.update)
    except ReplayError as exc:
        print(f"syncledger replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        bar.close()
        source.close()
        target.close()
    if args.json:
        emit_json(out)
    else:
        print(f"{out['events_copied']:,} events of {out['meetings']:,} meetings, "
              f"{out['parked_copied']:,} parked and {out['quarantined_copied']:,} quarantined "
              f"lines as of {out['until']} written to {out['db_out']}")
        print(f"query it with e.g.: syncledger issues --db '{out['db_out']}'")
    return EXIT_OK


def _whatif_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="assignments", action="append", required=True,
                   metavar="KEY=VALUE",
                   help="a settings change laid on the whole history: sync_private_items=true, "
                        "product_users.EMAIL=USER_ID, org_domains+=DOMAIN, "
                        "salesforce_time_zones+=ZONE, or KEY=JSON; repeatable")
    p.add_argument("--json", action="store_true", help="print the difference as JSON")


@command("whatif", "re-decide the recorded history under changed settings and show the "
                   "difference (the ledger is not touched)", _whatif_args)
def cmd_whatif(args: argparse.Namespace) -> int:
    from ledger.settings import SettingsError
    from projections.whatif import whatif

    store = open_store(args)
    try:
        out = whatif(store, args.assignments)
    except SettingsError as exc:
        print(f"syncledger whatif: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    if args.json:
        emit_json(out)
        return EXIT_OK
    print(f"with {', '.join(args.assignments)}:")
    labels = {"would_now_sync": "would now sync", "would_stop_syncing": "would stop syncing",
              "issues_disappear": "issues that would disappear",
              "issues_appear": "issues that would appear",
              "conflicts_disappear": "conflicts that would disappear",
              "conflicts_appear": "conflicts that would appear"}
    for key, label in labels.items():
        rows = out[key]
        print(f"\n{label}: {len(rows)}")
        for row in rows:
            extra = row.get("issue") or row.get("conflict") or ""
            print(f"  {row['meeting_id']}  {extra}")
    return EXIT_OK
