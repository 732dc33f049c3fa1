"""Sending e-mail through SMTP (SMTP_URL). Without SMTP_URL the site sends no notifications or
digests; account e-mails (community.accounts.tasks) are written to files instead."""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from community.core import i18n
from community.core.settings import Settings
from community.core.web import TEMPLATES_DIR

TIMEOUT_SECONDS = 20


class MailConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    use_ssl: bool
    starttls: bool


def parse_smtp_url(url: str) -> SmtpConfig:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailConfigError("SMTP_URL must look like smtp://user:pass@host:587 or smtps://host")
    options = {key: values[-1].lower() for key, values in parse_qs(parts.query).items()}
    use_ssl = parts.scheme == "smtps"
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or (465 if use_ssl else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_ssl=use_ssl,
        starttls=options.get("starttls") in ("1", "true", "yes"),
    )


def email_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR / "email"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env


def stable_message_id(settings: Settings, *parts: object) -> str:
    """The same Message-ID every time for the same e-mail (`parts` name it: a notification,
    a digest's items), unique to this site (keyed with its secret), at the site's host name."""
    name = ":".join(str(part) for part in parts)
    digest = hmac.new(
        settings.effective_secret_key.encode(), f"message-id:{name}".encode(), hashlib.sha256
    ).hexdigest()[:24]
    host = urlsplit(settings.base_url).hostname or "community.invalid"
    return f"<{'.'.join(str(part) for part in parts[:2])}.{digest}@{host}>"


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.sender = settings.mail_from
        self.config = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None

    @property
    def enabled(self) -> bool:
        return self.config is not None

    def send(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        *,
        message_id: str | None = None,
    ) -> None:
        """Send one message. Delivery is at-least-once (the send happens before the database
        records it), so callers pass a `message_id` that stays the same when the same e-mail
        is sent again: mail clients and servers drop a repeated Message-ID."""
        if self.config is None:
            return
        self.deliver(self.compose(to, subject, text, html, message_id=message_id))

    def compose(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        *,
        message_id: str | None = None,
    ) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id or make_msgid(domain="community.invalid")
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        return message

    def deliver(self, message: EmailMessage) -> None:
        """Hand a composed message to the SMTP server (SMTP_URL must be set)."""
        if self.config is None:
            raise MailConfigError("SMTP_URL is not set")
        config = self.config
        client: smtplib.SMTP
        if config.use_ssl:
            client = smtplib.SMTP_SSL(
                config.host,
                config.port,
                timeout=TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_SECONDS)
        with client:
            if config.starttls:
                client.starttls(context=ssl.create_default_context())
            if config.username and config.password:
                client.login(config.username, config.password)
            client.send_message(message)
