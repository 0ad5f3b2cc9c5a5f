"""Command line for the console: ``review`` serves it, ``reviewers add`` lets someone sign in."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from streams.logging import configure_logging
from streams.settings import Settings


def cmd_review(settings: Settings, args: argparse.Namespace) -> int:
    from streams.review.web import serve

    configure_logging(settings.log_level)
    serve(settings)
    return 0


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if args.no_password:
        return None
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    return first


def cmd_reviewers_add(settings: Settings, args: argparse.Namespace) -> int:
    from streams.postgres import connect
    from streams.review.auth import add_reviewer

    password = _password(args)
    if password is None and not args.token:
        raise SystemExit("a reviewer needs a password or a token (--token)")

    async def run() -> str | None:
        conn = await connect(settings)
        try:
            return await add_reviewer(
                conn, args.username, args.name or args.username, args.role, password, args.token
            )
        finally:
            await conn.close()

    try:
        token = asyncio.run(run())
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(f"reviewer {args.username} ({args.role}) saved", file=sys.stderr)
    if token:
        print(token)  # shown once: only its digest is stored
    return 0


def register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    subparsers.add_parser(
        "review", help="serve the review console (PAYEE_STREAM_REVIEW_HOST/PORT, default 127.0.0.1:6070)"
    ).set_defaults(handler=cmd_review)
    reviewers = subparsers.add_parser("reviewers", help="who may sign in to the review console").add_subparsers(
        dest="action", required=True
    )
    add = reviewers.add_parser("add", help="add or update a reviewer (asks for the password)")
    add.add_argument("username")
    add.add_argument("--name", help="display name (default: the username)")
    add.add_argument("--role", choices=["reviewer", "read_only"], default="reviewer")
    add.add_argument("--token", action="store_true", help="also issue an API token (printed once)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--no-password", action="store_true", help="token only, no password sign-in")
    add.set_defaults(handler=cmd_reviewers_add)
