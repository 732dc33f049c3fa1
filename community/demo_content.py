"""The demo community's text, written for this project: Acme, a consumer electronics and telecom
brand, with forums in English and Spanish: the brand, forums, members, search synonyms and KB
articles (the threads are in `demo_threads`). Kept apart from the loader so it reads as content."""

from __future__ import annotations

from typing import Any, TypedDict

DEMO_PASSWORD = "community-demo-2026"  # noqa: S105 - documented demo login

BRAND: dict[str, Any] = {
    "slug": "acme",
    "name": "Acme",
    "description": (
        "Help with Acme mobile plans, home internet, devices and billing, from customers "
        "like you and the Acme support team."
    ),
    "default_locale": "en",
    "theme": {"accent": "#0b5cad"},
}

FORUMS: list[dict[str, Any]] = [
    {
        "slug": "mobile",
        "name": "Mobile & plans",
        "description": "Coverage, data, roaming, eSIM and choosing the right plan.",
    },
    {
        "slug": "home-internet",
        "name": "Home internet & Wi-Fi",
        "description": "Fibre and broadband connections, routers, mesh Wi-Fi and speed.",
    },
    {
        "slug": "devices",
        "name": "Phones & devices",
        "description": "Set-up, updates, batteries, accessories and repairs.",
    },
    {
        "slug": "billing",
        "name": "Billing & account",
        "description": "Bills, payments, refunds, contracts and account security.",
    },
    {
        "slug": "espanol",
        "name": "Comunidad en español",
        "description": "Preguntas y respuestas sobre móvil, fibra, dispositivos y facturas.",
    },
    {
        "slug": "ideas",
        "name": "Ideas & feedback",
        "description": "Suggest improvements to Acme products and this community.",
    },
]

# username, display name, role, locale, reputation, trust level
USERS: list[tuple[str, str, str, str, int, int]] = [
    ("acme_admin", "Alex (Acme admin)", "admin", "en", 120, 4),
    ("mod_maria", "María (moderator)", "moderator", "es", 860, 4),
    ("agent_lee", "Lee from Acme Support", "agent", "en", 540, 3),
    ("agent_sofia", "Sofía de Soporte Acme", "agent", "es", 410, 3),
    ("jordan_k", "Jordan K", "member", "en", 1290, 3),
    ("priya", "Priya S", "member", "en", 655, 2),
    ("carlos.m", "Carlos Martín", "member", "es", 730, 2),
    ("lucia_r", "Lucía R", "member", "es", 205, 1),
    ("techie_tom", "Tom the techie", "member", "en", 2140, 3),
    ("newbie_nina", "Nina", "member", "en", 3, 0),
]

# Each thread: forum, author, kind, locale, age in days, title, body, views, helpful marks and
# answers as (author, body, upvotes, downvotes, accepted, official).

SYNONYMS: list[list[str]] = [
    ["wifi", "wi-fi", "wireless", "wlan"],
    ["esim", "e-sim", "digital sim"],
    ["router", "hub", "modem"],
    ["bill", "invoice", "charge", "payment"],
    ["factura", "recibo", "cobro"],
    ["roaming", "abroad", "travel"],
    ["móvil", "movil", "celular", "teléfono"],
    ["fibra", "fibre", "fiber", "broadband"],
    ["slow", "lenta", "lento"],
    ["blinking", "flashing"],
    ["drops", "disconnects", "cuts out"],
    ["evening", "night"],
    ["eu", "europe"],
    ["carrier", "provider", "operator"],
    ["receipt", "invoice"],
    ["2fa", "mfa", "two-step verification", "two-factor authentication"],
    ["charged twice", "double charged", "billed twice", "double payment", "duplicate payment"],
    ["tarifa", "plan"],
]


class DemoArticle(TypedDict):
    source_title: str
    author: str
    title: str
    summary: str
    body: str
    tags: list[str]
    locale: str


ARTICLES: list[DemoArticle] = [
    {
        "source_title": "Wi-Fi drops every evening around 8pm on the Acme Hub 3",
        "author": "agent_lee",
        "title": "Fix Wi-Fi that drops at busy times of day",
        "summary": "When Wi-Fi disconnects at the same time every day but cable keeps working, "
        "change the Wi-Fi channel and update the hub.",
        "body": (
            "If your Wi-Fi drops for a minute or two at about the same time every evening while "
            "devices plugged in by cable keep working, the Wi-Fi channel is congested: many "
            "networks nearby get busy at once.\n\n"
            "## What to do\n\n"
            "1. Open `http://192.168.1.1` and sign in with the password printed on the hub's "
            "card.\n"
            "2. In *Wireless → Advanced*, turn off *Smart channel* for 2.4 GHz and choose "
            "channel 1, 6 or 11 (a Wi-Fi analyser app shows the quietest).\n"
            "3. Give the 5 GHz band its own network name so phones and laptops prefer it.\n"
            "4. Check *Settings → Software* for hub firmware 3.12.4 or later, which fixes an "
            "evening Wi-Fi scheduler fault.\n\n"
            "If the drops continue after a day, restart the hub and contact support."
        ),
        "tags": ["wifi", "router", "hub-3"],
        "locale": "en",
    },
    {
        "source_title": "How do I move my number to an eSIM on a new phone?",
        "author": "agent_lee",
        "title": "Move your number to an eSIM",
        "summary": "Switch from a physical SIM to an eSIM yourself in the Acme app, free and "
        "without losing your number.",
        "body": (
            "You can move your number to an eSIM yourself; your line keeps working throughout.\n\n"
            "1. In the Acme app, go to *Account → SIM → Switch to eSIM*.\n"
            "2. Confirm with the code we text to your current SIM.\n"
            "3. Scan the QR code the app shows **with the new phone**.\n\n"
            "The old SIM stops working about 10 minutes later. If the QR code expires, create a "
            "new one from the same screen. There is no charge."
        ),
        "tags": ["esim", "sim"],
        "locale": "en",
    },
    {
        "source_title": "¿Cómo activo la eSIM en mi móvil nuevo?",
        "author": "agent_sofia",
        "title": "Pasar tu número a una eSIM",
        "summary": "Activa la eSIM desde la app de Acme, gratis y sin perder tu número.",
        "body": (
            "Puedes pasar tu número a una eSIM tú mismo, sin quedarte sin línea.\n\n"
            "1. En la app de Acme, entra en *Cuenta → SIM → Cambiar a eSIM*.\n"
            "2. Confirma con el código que llega por SMS a tu SIM actual.\n"
            "3. Escanea el código QR **con el móvil nuevo**.\n\n"
            "La SIM antigua deja de funcionar unos 10 minutos después. Es gratis."
        ),
        "tags": ["esim"],
        "locale": "es",
    },
]

# Saved replies (issue 19): the support team's agreed wording, in both languages. "article" is
# the title of the demo article {kb_link} points at (None: the KB entry most like the thread).
SAVED_REPLIES: list[dict[str, Any]] = [
    {
        "title": "Ask for the order number",
        "locale": "en",
        "action": "ask_details",
        "article": None,
        "body": 'Hi {author_name}, thanks for reaching out about "{thread_title}". Could you '
        "tell us your order number (not your card or account number) so we can look into it?"
        "\n\n{agent_name}, Acme support",
    },
    {
        "title": "Pedir el número de pedido",
        "locale": "es",
        "action": "ask_details",
        "article": None,
        "body": 'Hola {author_name}, gracias por escribirnos sobre "{thread_title}". ¿Nos '
        "indicas tu número de pedido (no el de tu tarjeta ni de tu cuenta) para revisarlo?"
        "\n\n{agent_name}, soporte de Acme",
    },
    {
        "title": "Known fix: link to the article",
        "locale": "en",
        "action": "resolve",
        "article": None,
        "body": "Hi {author_name}, this is a known problem with a fix: the steps are in {kb_link}. "
        "We are marking this as resolved; reply here if it does not work for you.",
    },
    {
        "title": "Wi-Fi drops: the router guide",
        "locale": "en",
        "action": "answer",
        "article": "Fix Wi-Fi that drops at busy times of day",
        "body": "Hi {author_name}, Wi-Fi that drops at busy times is usually the channel: "
        "our guide {kb_link} walks you through changing it.",
    },
]
