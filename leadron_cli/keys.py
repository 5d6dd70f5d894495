"""`leadron keys`: API keys and providers' signed webhook URLs."""

from __future__ import annotations

import argparse
import sys

from leadron.settings import get_settings


def _keystore():
    from leadron.keystore import KeyStore

    return KeyStore(get_settings().api_keys_path)


def cmd_keys_create(args: argparse.Namespace) -> int:
    try:
        key, record = _keystore().create(args.tenant, tuple(s.strip() for s in args.scopes.split(",") if s.strip()))
    except ValueError as exc:
        print(f"leadron keys create: {exc}", file=sys.stderr)
        return 2
    print(key)
    print(
        f"key id {record.key_id} for tenant {record.tenant_id}, scopes {','.join(record.scopes)}. "
        "Store the key now: it is not shown again.",
        file=sys.stderr,
    )
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = _keystore().list(args.tenant)
    print(f"{'key_id':<10} {'tenant':<24} {'created_at':<26} {'revoked_at':<26} scopes")
    for k in keys:
        print(f"{k.key_id:<10} {k.tenant_id:<24} {k.created_at:<26} {k.revoked_at or '-':<26} {','.join(k.scopes)}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    if _keystore().revoke(args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    print(f"leadron keys revoke: no active key with id {args.key_id!r}", file=sys.stderr)
    return 1


def cmd_keys_webhook_url(args: argparse.Namespace) -> int:
    from leadron.tracking import webhook_token
    from leadron.webhook_auth import sendgrid_public_key

    store = _keystore()
    key = args.verification_key
    if key == "-":  # from stdin, so the key stays out of the shell history and the process list
        key = sys.stdin.readline().strip()
    if key:
        if args.provider == "sendgrid":
            try:
                sendgrid_public_key(key)
            except ValueError as exc:
                print(f"leadron keys webhook-url: --verification-key: {exc}", file=sys.stderr)
                return 2
        try:
            store.set_webhook_key(args.tenant, args.provider, key)
        except ValueError as exc:
            print(f"leadron keys webhook-url: {exc}", file=sys.stderr)
            return 2
    elif store.webhook_key(args.tenant, args.provider) is None:
        print(
            f"leadron keys webhook-url: --verification-key is needed: no {args.provider} key is registered for "
            f"{args.tenant}, and unsigned webhooks are refused",
            file=sys.stderr,
        )
        return 2
    token = webhook_token(get_settings().secret(), args.tenant, args.provider)
    print(f"{args.base_url.rstrip('/')}/v1/analytics/webhooks/{args.provider}/{token}")
    return 0


def add_keys_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="manage API keys", description="Create, list and revoke API keys.")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    p = ksub.add_parser(
        "create",
        help="create a key (printed once)",
        description="Create an API key for a tenant; the key is printed once on stdout and only its hash is stored.",
    )
    p.add_argument("--tenant", required=True)
    p.add_argument(
        "--scopes",
        default="events:write,analytics:read,reports:write,exports:write",
        help="comma-separated scopes (default: all)",
    )
    p.set_defaults(func=cmd_keys_create)
    p = ksub.add_parser("list", help="list keys (ids, never the keys)", description="List API keys by id.")
    p.add_argument("--tenant", default=None)
    p.set_defaults(func=cmd_keys_list)
    p = ksub.add_parser("revoke", help="revoke a key by id", description="Revoke an API key by its id.")
    p.add_argument("key_id")
    p.set_defaults(func=cmd_keys_revoke)
    p = ksub.add_parser(
        "webhook-url",
        help="signed webhook URL for a mail provider",
        description="Print the URL to configure in SendGrid or Mailgun for a tenant.",
    )
    p.add_argument("--tenant", required=True)
    p.add_argument("--provider", choices=["sendgrid", "mailgun"], required=True)
    p.add_argument("--base-url", default="http://127.0.0.1:8000")
    p.add_argument(
        "--verification-key",
        default=None,
        metavar="KEY",
        help="the provider's key, stored with the tenant: SendGrid's Signed Event Webhook verification "
        "key (base64 public key), Mailgun's webhook signing key; '-' reads it from stdin. Needed "
        "the first time: a webhook that does not verify is refused with 401",
    )
    p.set_defaults(func=cmd_keys_webhook_url)
