"""The demo community's threads with their answers, written for this project (Acme's forums in
English and Spanish). Kept apart from the loader so it reads as content; the brand, its forums,
members, synonyms and articles are in `demo_content`."""

from __future__ import annotations

from typing import NotRequired, TypedDict

# author, body, upvotes, downvotes, accepted, official
DemoAnswer = tuple[str, str, int, int, bool, bool]


class DemoThread(TypedDict):
    forum: str
    author: str
    kind: str
    locale: str
    days_ago: int
    title: str
    body: str
    views: int
    helpful: int
    answers: list[DemoAnswer]
    tags: NotRequired[list[str]]


THREADS: list[DemoThread] = [
    {
        "forum": "home-internet",
        "author": "priya",
        "kind": "problem",
        "locale": "en",
        "days_ago": 2,
        "title": "Wi-Fi drops every evening around 8pm on the Acme Hub 3",
        "tags": ["wifi", "router", "hub-3"],
        "body": (
            "Since last week my Wi-Fi disconnects for a minute or two almost every evening, "
            "always between 8 and 9pm. The Hub 3 lights stay white, and laptops plugged in by "
            "cable keep working.\n\nWhat I tried:\n\n- restarting the hub\n- moving it off the "
            "floor\n- forgetting the network on my phone\n\nAny ideas before I call support?"
        ),
        "views": 342,
        "helpful": 9,
        "answers": [
            (
                "techie_tom",
                "Cable fine and Wi-Fi dropping at the same time every day is almost always "
                "**channel congestion**: everyone on your street starts streaming at 8pm.\n\n"
                "1. Open `http://192.168.1.1` and sign in with the password on the hub's card.\n"
                "2. Go to *Wireless → Advanced* and turn off *Smart channel* for 2.4 GHz.\n"
                "3. Pick channel 1, 6 or 11, whichever the Wi-Fi analyser app shows as least "
                "busy.\n4. Give the 5 GHz band its own name so your phone prefers it.\n\n"
                "It fixed the same problem for me and two neighbours.",
                41,
                1,
                True,
                False,
            ),
            (
                "jordan_k",
                "Also check for a firmware update under *Settings → Software*. Version "
                "3.12.4 fixed a Wi-Fi scheduler bug that caused exactly these evening drops.",
                17,
                0,
                False,
                False,
            ),
        ],
    },
    {
        "forum": "mobile",
        "author": "jordan_k",
        "kind": "question",
        "locale": "en",
        "days_ago": 5,
        "title": "How do I move my number to an eSIM on a new phone?",
        "tags": ["esim", "sim"],
        "body": (
            "I'm switching from a physical SIM to an eSIM on a new phone. Do I need a new "
            "QR code from Acme, or can I transfer it myself? I don't want to lose my number "
            "for a day."
        ),
        "views": 1210,
        "helpful": 22,
        "answers": [
            (
                "agent_lee",
                "You can do it yourself and keep your number the whole time:\n\n"
                "1. In the Acme app, go to *Account → SIM → Switch to eSIM*.\n"
                "2. Confirm with the code we text to your current SIM.\n"
                "3. Scan the QR code the app shows **with the new phone**.\n\n"
                "Your old SIM stops working about 10 minutes later. If the QR code expires, "
                "generate a new one from the same screen; there is no charge.",
                63,
                0,
                True,
                True,
            ),
        ],
    },
    {
        "forum": "billing",
        "author": "newbie_nina",
        "kind": "complaint",
        "locale": "en",
        "days_ago": 1,
        "title": "Charged twice for my November bill",
        "tags": ["payments", "refunds"],
        "body": (
            "My bank shows two payments of 34.99 to Acme on the same day. I only have one "
            "line. This is really frustrating, I need that money back before rent is due."
        ),
        "views": 58,
        "helpful": 3,
        "answers": [
            (
                "priya",
                "Happened to me in March: the second one was a pending authorisation that "
                "disappeared after three working days. Check whether one of them is marked "
                "*pending* in your bank app.",
                6,
                0,
                False,
                False,
            ),
        ],
    },
    {
        "forum": "devices",
        "author": "lucia_r",
        "kind": "question",
        "locale": "en",
        "days_ago": 9,
        "title": "Battery drains overnight after the latest update",
        "tags": ["battery", "nova-5", "updates"],
        "body": (
            "After updating my Acme Nova 5 to the latest system version the battery goes from "
            "80% to 40% overnight with the screen off. Is this a known issue?"
        ),
        "views": 780,
        "helpful": 14,
        "answers": [
            (
                "techie_tom",
                "After a major update the phone re-indexes photos and files for a day or two, "
                "which uses battery. If it continues after 48 hours:\n\n"
                "- *Settings → Battery → Usage* shows which app is to blame\n"
                "- turn off *Adaptive connectivity* temporarily\n"
                "- clear the system cache from recovery mode (no data is lost)",
                29,
                2,
                True,
                False,
            ),
            (
                "carlos.m",
                "For me it was the weather widget refreshing every minute. Removing it from the "
                "home screen fixed the drain.",
                8,
                0,
                False,
                False,
            ),
        ],
    },
    {
        "forum": "mobile",
        "author": "techie_tom",
        "kind": "question",
        "locale": "en",
        "days_ago": 14,
        "title": "Does roaming in the EU cost extra on the Unlimited Plus plan?",
        "tags": ["roaming", "plans"],
        "body": "Travelling to Portugal and Spain next month. Will I be charged for data there?",
        "views": 530,
        "helpful": 11,
        "answers": [
            (
                "agent_lee",
                "Unlimited Plus includes **roam like at home** in the EU: calls, texts and up "
                "to 30 GB of data a month at no extra cost. Beyond 30 GB a fair-use charge "
                "applies; the app warns you at 80%.",
                35,
                0,
                True,
                True,
            ),
        ],
    },
    {
        "forum": "home-internet",
        "author": "carlos.m",
        "kind": "question",
        "locale": "en",
        "days_ago": 21,
        "title": "Which mesh Wi-Fi works with the Acme fibre router?",
        "tags": ["wifi", "mesh", "router"],
        "body": (
            "I have a three-floor house and the signal upstairs is weak. Can I add any mesh "
            "system, or does it have to be Acme's own booster?"
        ),
        "views": 402,
        "helpful": 6,
        "answers": [
            (
                "jordan_k",
                "Any mesh system works. Put the Acme router in **bridge mode** (*Settings → "
                "Advanced → Mode*) so only the mesh hands out addresses, otherwise you end up "
                "with double NAT and online games complain.",
                19,
                0,
                False,
                False,
            ),
        ],
    },
    {
        "forum": "ideas",
        "author": "priya",
        "kind": "idea",
        "locale": "en",
        "days_ago": 30,
        "title": "Let us schedule Wi-Fi downtime for the kids' devices",
        "tags": ["wifi", "parental-controls"],
        "body": (
            "It would be great if the Acme app could pause Wi-Fi for selected devices on a "
            "schedule, like school nights after 9pm."
        ),
        "views": 260,
        "helpful": 31,
        "answers": [
            (
                "mod_maria",
                "Thanks Priya! This is on the product team's list; vote with *this helped me "
                "too* so they can see the interest.",
                12,
                0,
                False,
                False,
            ),
        ],
    },
    {
        "forum": "billing",
        "author": "jordan_k",
        "kind": "question",
        "locale": "en",
        "days_ago": 40,
        "title": "How do I get a VAT invoice for my business line?",
        "tags": ["invoices", "business"],
        "body": "My accountant needs proper VAT invoices, not the monthly summary. Where are they?",
        "views": 150,
        "helpful": 4,
        "answers": [
            (
                "agent_lee",
                "In *My Acme → Bills*, choose a month and *Download → VAT invoice (PDF)*. If the "
                "option is missing, add your company details under *Account → Business "
                "details* first.",
                14,
                0,
                True,
                True,
            ),
        ],
    },
    {
        "forum": "devices",
        "author": "newbie_nina",
        "kind": "praise",
        "locale": "en",
        "days_ago": 3,
        "title": "Thanks to the store team in Leeds!",
        "body": "They replaced my cracked screen in 40 minutes and were lovely. Great service!",
        "views": 44,
        "helpful": 2,
        "answers": [],
    },
    {
        "forum": "mobile",
        "author": "lucia_r",
        "kind": "question",
        "locale": "en",
        "days_ago": 0,
        "title": "No signal in the new office building since Monday",
        "tags": ["coverage", "outage"],
        "body": (
            "Our whole team lost Acme signal inside the building since Monday. Other "
            "networks work. Is there an outage in the area?"
        ),
        "views": 12,
        "helpful": 1,
        "answers": [],
    },
    {
        "forum": "espanol",
        "author": "carlos.m",
        "kind": "problem",
        "locale": "es",
        "days_ago": 4,
        "title": "La fibra va muy lenta por la noche",
        "tags": ["fibra", "wifi", "router"],
        "body": (
            "Tengo contratados 600 Mb y por la noche no paso de 50 Mb por Wi-Fi. Por cable "
            "llega a 580. ¿Es problema del router?"
        ),
        "views": 390,
        "helpful": 12,
        "answers": [
            (
                "mod_maria",
                "Si por cable va bien, el problema es el Wi-Fi, no la fibra. Prueba esto:\n\n"
                "1. Conéctate a la red de **5 GHz** (la que termina en `_5G`).\n"
                "2. En el router, cambia el canal de 2,4 GHz a 1, 6 u 11.\n"
                "3. Aleja el router de microondas y teléfonos inalámbricos.",
                27,
                0,
                True,
                False,
            ),
            (
                "agent_sofia",
                "Además, la actualización 3.12.4 del router mejora el rendimiento nocturno. "
                "Se instala sola, pero puedes forzarla desde *Ajustes → Software*.",
                15,
                0,
                False,
                True,
            ),
        ],
    },
    {
        "forum": "espanol",
        "author": "lucia_r",
        "kind": "question",
        "locale": "es",
        "days_ago": 8,
        "title": "¿Cómo activo la eSIM en mi móvil nuevo?",
        "tags": ["esim"],
        "body": (
            "Me he comprado un móvil nuevo y quiero pasar mi número a eSIM sin perder la línea."
        ),
        "views": 610,
        "helpful": 18,
        "answers": [
            (
                "agent_sofia",
                "Desde la app de Acme: *Cuenta → SIM → Cambiar a eSIM*. Confirmas con el código "
                "que llega por SMS y escaneas el código QR con el móvil nuevo. La SIM antigua "
                "deja de funcionar unos 10 minutos después. Es gratis.",
                44,
                0,
                True,
                True,
            ),
        ],
    },
    {
        "forum": "espanol",
        "author": "carlos.m",
        "kind": "complaint",
        "locale": "es",
        "days_ago": 2,
        "title": "Me han cobrado la permanencia sin avisar",
        "tags": ["facturas", "permanencia"],
        "body": (
            "Cambié de tarifa y en la factura aparece una penalización de 60 €. Nadie me "
            "dijo que tenía permanencia. Es una vergüenza."
        ),
        "views": 95,
        "helpful": 5,
        "answers": [],
    },
    {
        "forum": "espanol",
        "author": "lucia_r",
        "kind": "question",
        "locale": "es",
        "days_ago": 16,
        "title": "¿Cuánto cuesta el roaming en Marruecos?",
        "tags": ["roaming"],
        "body": "Viajo a Marruecos en diciembre. ¿Tengo que contratar algún bono de datos?",
        "views": 210,
        "helpful": 3,
        "answers": [
            (
                "carlos.m",
                "Marruecos no está en la zona UE, así que sin bono se cobra por MB. Yo contraté "
                "el *Bono Mundo 5 GB* desde la app antes de salir y fue bastante más barato.",
                11,
                0,
                True,
                False,
            ),
        ],
    },
    {
        "forum": "devices",
        "author": "jordan_k",
        "kind": "question",
        "locale": "en",
        "days_ago": 25,
        "title": "Can I use my Acme Nova 5 with another carrier's SIM?",
        "tags": ["nova-5", "unlock"],
        "body": "Bought the phone outright from Acme last year. Is it locked to the network?",
        "views": 670,
        "helpful": 9,
        "answers": [
            (
                "techie_tom",
                "Phones bought outright since 2022 are sold unlocked. Older ones can be "
                "unlocked for free from *My Acme → Devices → Unlock*; it takes up to 24 hours.",
                22,
                0,
                True,
                False,
            ),
        ],
    },
    {
        "forum": "billing",
        "author": "priya",
        "kind": "question",
        "locale": "en",
        "days_ago": 12,
        "title": "Someone tried to log into my account, how do I secure it?",
        "tags": ["security", "account"],
        "body": (
            "I got an e-mail saying there was a login attempt from another country. I changed "
            "my password. What else should I do?"
        ),
        "views": 320,
        "helpful": 8,
        "answers": [
            (
                "agent_lee",
                "Good first step. Also:\n\n- turn on *two-step verification* in *Account → "
                "Security*\n- review *Signed-in devices* and sign out the ones you don't "
                "recognise\n- add a **port-out PIN** so nobody can move your number without "
                "it\n\nWe never ask for your password by phone or e-mail.",
                38,
                0,
                True,
                True,
            ),
        ],
    },
    {
        "forum": "home-internet",
        "author": "newbie_nina",
        "kind": "question",
        "locale": "en",
        "days_ago": 6,
        "title": "What do the blinking orange lights on the router mean?",
        "tags": ["router", "fibre"],
        "body": "The power light is blinking orange and there's no internet. Is it broken?",
        "views": 205,
        "helpful": 5,
        "answers": [
            (
                "jordan_k",
                "Blinking orange means the router cannot reach the fibre box (ONT). Check the "
                "green cable between the wall box and the router, then restart the wall box "
                "first and the router a minute later.",
                16,
                1,
                False,
                False,
            ),
        ],
    },
    {
        "forum": "ideas",
        "author": "carlos.m",
        "kind": "idea",
        "locale": "es",
        "days_ago": 18,
        "title": "Poder pagar la factura con Bizum",
        "tags": ["pagos", "app"],
        "body": "Estaría bien poder pagar las facturas pendientes con Bizum desde la app.",
        "views": 120,
        "helpful": 15,
        "answers": [],
    },
]
