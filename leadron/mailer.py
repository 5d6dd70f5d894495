"""E-mail through SMTP (smtplib/email): safe headers, inline images, attachments, retries with backoff.

Settings from the environment (read when sending): LEADRON_SMTP_HOST, LEADRON_SMTP_PORT (587),
LEADRON_SMTP_STARTTLS (true), LEADRON_SMTP_USER / LEADRON_SMTP_PASSWORD (login when set),
LEADRON_SMTP_SENDER, LEADRON_SMTP_CA_FILE (a private CA; default: the system's certificates).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

# A plain address: no display name, no comments, no line breaks (RFC 5322 is wider; reports need no more).
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# Line breaks, raw or encoded (URL %0a/%0d, MIME =0A/=0D, escaped \r \n, Unicode line separators).
_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85]|%0[ad]|=0[ad]|\\[rn]", re.IGNORECASE)


class MailError(ValueError):
    """A message that must not be sent (bad header or address); the message names the field."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    starttls: bool
    user: str | None
    password: str | None
    sender: str
    ca_file: str | None = None  # a private CA for the server's certificate (default: the system's)

    @classmethod
    def from_env(cls) -> SmtpSettings:
        host = os.environ.get("LEADRON_SMTP_HOST", "").strip()
        if not host:
            raise MailError("LEADRON_SMTP_HOST: not set, so no e-mail can be sent")
        return cls(
            host=host,
            port=int(os.environ.get("LEADRON_SMTP_PORT", "587")),
            starttls=os.environ.get("LEADRON_SMTP_STARTTLS", "true").lower() in ("1", "true", "yes"),
            user=os.environ.get("LEADRON_SMTP_USER") or None,
            password=os.environ.get("LEADRON_SMTP_PASSWORD") or None,
            sender=os.environ.get("LEADRON_SMTP_SENDER", "reports@leadron.local"),
            ca_file=os.environ.get("LEADRON_SMTP_CA_FILE") or None,
        )


def header_value(field: str, value: str) -> str:
    if _BREAKS.search(value):
        raise MailError(f"{field}: contains a line break (header injection)")
    return value


def recipient(value: str) -> str:
    if _BREAKS.search(value) or not _ADDRESS.match(value.strip()):
        raise MailError(f"recipients: {value!r} is not a valid e-mail address")
    return value.strip()


def build_message(
    sender: str,
    recipients: list[str],
    subject: str,
    html: str,
    text: str,
    inline_png: bytes | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> EmailMessage:
    """HTML with a plain-text alternative; `inline_png` is referenced from the HTML as cid:chart."""
    if not recipients:
        raise MailError("recipients: at least one is needed")
    message = EmailMessage()
    message["From"] = recipient(sender)
    message["To"] = ", ".join(recipient(r) for r in recipients)
    message["Subject"] = header_value("subject", subject)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="leadron.local")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if inline_png is not None:
        message.get_payload()[1].add_related(
            inline_png, maintype="image", subtype="png", cid="<chart>", filename="chart.png", disposition="inline"
        )
    for filename, mime, data in attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=header_value("filename", filename))
    return message


def send(message: EmailMessage, smtp: SmtpSettings, attempts: int = 3, backoff_s: float = 2.0) -> None:
    """Send, retrying transient failures with exponential backoff; the last failure is raised."""
    for attempt in range(1, attempts + 1):
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as client:
                if smtp.starttls:
                    client.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
                if smtp.user:
                    client.login(smtp.user, smtp.password or "")
                client.send_message(message)
            return
        except (smtplib.SMTPException, OSError):
            if attempt == attempts:
                raise
            time.sleep(backoff_s * 2 ** (attempt - 1))
