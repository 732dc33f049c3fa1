"""A deterministic synthetic support community: the source behind `community seed --scale N`.

Every record is computed from `(seed, k)` alone: thread k has its own `random.Random` seeded
with the string ``"{seed}:t:{k}"`` (string seeds hash with SHA-512, the same on every platform
and Python 3 version), and user j its own ``"{seed}:u:{j}"``. So `SyntheticSource(2 * n)`
yields everything `SyntheticSource(n)` yields, unchanged, plus threads n+1..2n, and the source
`name` leaves the scale out: seeding again at a larger scale imports only the new threads.
Nothing is held across threads, so memory stays flat whatever the scale. Each part replays a
thread's cheap outline (dates, kind, topic, answer count, votes) from the start of its stream,
then continues the stream for what only that part needs (authors, text).

Ids: question k is post ``100 * k`` and its answers ``100 * k + 1 ..``. Questions and answers
share one id space, as Stack Exchange posts do. Comment i on post p is ``100 * p + i``.
Users are ``1 .. max(5, ceil(threads / 3))``, and thread k only picks authors among the first
``max(5, ceil(k / 3))``, so adding threads never changes who wrote the earlier ones.

Distributions (the shape of a brand's support community):

- dates: threads start in the 730 days before 2026-01-01 UTC, age ~ 730 d * U^1.25 (somewhat
  more recent activity, as a growing community has); answer i follows the previous post after
  a log-normal delay (median 4 h for the first answer, 10 h after that, sigma 1.6), comments
  follow their post after a log-normal delay (median 2 h); anything that would land after the
  anchor date has not happened yet and is left out. ``last_activity_at`` is the newest post.
- kinds: 62% question, 20% problem, 7% idea, 6% complaint, 5% praise. Questions split into
  how-to, device trouble and account/billing; each kind has its own title and body templates.
- locale: 20% "es" (Spanish text throughout the thread), 80% "en".
- answers per thread: 20% none; otherwise 1 + floor(Lomax(scale 3, shape 2.5)), at most 30.
  Mean about 2, with a long tail.
- accepted answer: 50% of answered questions and problems, 12% of the other kinds (about 45%
  overall), the first answer 55% of the time.
- votes: up = floor(Lomax(shape 1.8)) scaled by a per-thread "heat" ~ LogNormal(0, 0.75), so
  most posts get 0-3 and a few get dozens or hundreds. Accepted answers get twice the scale and
  later answers get less. down ~ 5% of up (stochastically rounded), plus a stray downvote on 2%
  of posts. `VoteTotals` only for posts with votes; `score` = up - down.
- views: LogNormal(ln 120, 1.0) * heat * (1 + age in days / 240), times 1.6 when answered.
  That gives tens to tens of thousands.
- tags: 1-5 per question, from a vocabulary of 100: the product's tag (28 products), the
  topic's tag (symptom, how-to task, account issue or feature) and 0-3 setting tags ("android",
  "5ghz", "beta"...; 0/1/2/3 with 45/30/17/8%). Products, topics and setting tags are each
  drawn Zipf-like (weight 1/rank), so a few tags dominate.
- users: authors are picked as ``1 + floor(pool * U^a)``, a power law favouring low ids (a = 1.5
  for askers, 2.5 for answerers, 2.2 for commenters): a few veterans write most answers.
  A user joins before their first post: the five founders joined before the window; every
  other user joins at a time spread over the window and the 120 days before it, and is only
  picked for posts after that (three tries, then a founder). Reputation
  ~ 20000 / id^0.85 * LogNormal(0, 0.8). Display names come from small English and Spanish
  name lists (not Faker: faster, and its output changes between versions).
- deleted authors: 1.5% of questions, 1% of answers and 3% of comments have no author. A
  deleted comment author keeps a display name.
- comments: per post Geometric(p = 2/3), so 0.5 on average; 35% come from the asker.
- duplicates: about 1% of threads, all questions or problems, duplicate an earlier one (lower
  k and an earlier date, also a question or problem) and reuse its product and topic.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

from community.importing.records import (
    AnswerRecord,
    Closure,
    CommentRecord,
    DuplicateLink,
    Part,
    QuestionRecord,
    Skips,
    Source,
    UserRecord,
    VoteTotals,
)
from community.models import ThreadKind

T = TypeVar("T")

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=730)
WINDOW_START = ANCHOR - WINDOW
POST_ID_STRIDE = 100  # question k is post 100k; its answers follow, so at most 99 answers
COMMENT_ID_STRIDE = 100  # comment i on post p is 100p + i
MAX_ANSWERS = 30
MAX_COMMENTS = 20
FOUNDERS = 5  # users who joined before the window; always eligible authors
SITE_LABEL = "synthetic data"

_MASK64 = (1 << 64) - 1
_GOLDEN64 = 0x9E3779B97F4A7C15

# Families: what a thread is about, which decides its templates.
_HOWTO, _DEVICE, _ACCOUNT, _IDEA, _PRAISE = "howto", "device", "account", "idea", "praise"


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


def _table(text: str, width: int) -> tuple[tuple[str, ...], ...]:
    """Parse a phrase table: fields separated by " | ", one row per line; a line that starts
    with "|" continues the row above (long Spanish phrases)."""
    rows: list[str] = []
    for raw in text.strip().splitlines():
        line = raw.strip()
        if line.startswith("|") and rows:
            rows[-1] = f"{rows[-1]} {line}"
        elif line:
            rows.append(line)
    table = tuple(tuple(field.strip() for field in row.split(" | ")) for row in rows)
    for row in table:
        if len(row) != width:
            raise ValueError(f"phrase table row needs {width} fields: {row}")
    return table


# tag | English noun | Spanish noun | product line (model names are "Nova 5 Pro" and the like)
_PRODUCTS = _table(
    """
    router | router | router | Nova
    thermostat | smart thermostat | termostato inteligente | Solis
    security-camera | security camera | cámara de seguridad | Vigil
    smart-speaker | smart speaker | altavoz inteligente | Lyra
    phone | phone | teléfono | Vanta
    smartwatch | smartwatch | reloj inteligente | Kairo
    headset | wireless headset | auricular inalámbrico | Aria
    mesh-wifi | mesh Wi-Fi system | sistema wifi en malla | Orbit
    video-doorbell | video doorbell | timbre con vídeo | Porta
    tablet | tablet | tableta | Slate
    robot-vacuum | robot vacuum | robot aspirador | Brisa
    soundbar | soundbar | barra de sonido | Onda
    fitness-band | fitness band | pulsera de actividad | Pulse
    laptop | laptop | portátil | Atlas
    smart-plug | smart plug | enchufe inteligente | Volt
    smart-bulb | smart bulb | bombilla inteligente | Lumen
    streaming-stick | streaming stick | dispositivo de streaming | Flux
    e-reader | e-reader | lector de libros electrónicos | Quill
    smart-lock | smart lock | cerradura inteligente | Bastion
    printer | printer | impresora | Inkwell
    projector | projector | proyector | Halo
    dashcam | dash cam | cámara para coche | Roadie
    baby-monitor | baby monitor | vigilabebés | Nido
    air-purifier | air purifier | purificador de aire | Zephyr
    wireless-charger | wireless charger | cargador inalámbrico | Dock
    game-controller | game controller | mando de juegos | Arc
    smart-display | smart display | pantalla inteligente | Vista
    keyboard | keyboard | teclado | Tacto
    """,
    4,
)
_MODEL_SUFFIXES = ("", " Pro", " Mini", " Max", " Lite", " S", " Plus", " X")

# tag | English, third person | Spanish, third person
_SYMPTOMS = _table(
    """
    wifi | keeps dropping the Wi-Fi connection | pierde la conexión wifi cada pocos minutos
    power | won't turn on | no enciende
    battery | drains its battery overnight | se queda sin batería en una sola noche
    firmware-update | fails to install the firmware update
        | no consigue instalar la actualización de firmware
    bluetooth | won't pair over Bluetooth | no se empareja por Bluetooth
    app | doesn't show up in the app | no aparece en la app
    wifi | won't connect to my 5 GHz network | no se conecta a mi red de 5 GHz
    connectivity | shows as offline in the app | aparece sin conexión en la app
    setup | fails during setup with error {code}
        | falla durante la configuración con el error {code}
    power | restarts on its own every few hours | se reinicia sin motivo cada pocas horas
    firmware-update | gets stuck at {pct}% during the update
        | se detiene en el {pct} % durante la actualización
    charging | gets very hot while charging | se calienta mucho mientras carga
    battery | won't charge past 80% | no carga más allá del 80 %
    display | shows a black screen | muestra una pantalla negra
    audio | makes a crackling noise | hace un ruido de chasquidos
    notifications | sends notifications hours late
        | envía las notificaciones con horas de retraso
    bluetooth | disconnects from my phone every few minutes
        | se desconecta del móvil cada pocos minutos
    performance | is very slow to respond | tarda mucho en responder
    display | has a flickering screen | tiene la pantalla parpadeando
    audio | plays audio out of sync | reproduce el audio desincronizado
    sync | doesn't sync my settings | no sincroniza mis ajustes
    voice-assistant | ignores voice commands | no responde a los comandos de voz
    connectivity | loses its pairing after a power cut
        | pierde la vinculación después de un corte de luz
    overheating | overheats and shuts down | se sobrecalienta y se apaga
    hardware | makes a buzzing sound | hace un zumbido
    buttons | has an unresponsive power button | tiene el botón de encendido sin respuesta
    schedule | ignores the schedule I set | no respeta el horario que configuré
    camera | records blurry video at night | graba vídeo borroso por la noche
    storage | says the storage is full | dice que el almacenamiento está lleno
    led | blinks red and nothing else happens | parpadea en rojo y no hace nada más
    """,
    3,
)

# tag | English infinitive | Spanish infinitive; {p} is the product
_TASKS = _table(
    """
    factory-reset | factory reset my {p} | restablecer de fábrica mi {p}
    wifi | move my {p} to a new Wi-Fi network | cambiar mi {p} a otra red wifi
    firmware-update | update the firmware on my {p} manually
        | actualizar a mano el firmware de mi {p}
    sharing | share my {p} with family members | compartir mi {p} con mi familia
    setup | set up my {p} without the app | configurar mi {p} sin la app
    led | turn off the status light on my {p} | apagar la luz de estado de mi {p}
    schedule | set up a schedule for my {p} | programar horarios en mi {p}
    voice-assistant | link my {p} to a voice assistant | vincular mi {p} con un asistente de voz
    privacy | delete the recordings stored by my {p}
        | borrar las grabaciones guardadas por mi {p}
    transfer | transfer my {p} to a new owner | transferir mi {p} a otro propietario
    parental-controls | set up parental controls on my {p}
        | configurar el control parental en mi {p}
    backup | back up the settings of my {p}
        | hacer una copia de seguridad de los ajustes de mi {p}
    guest-access | give a guest temporary access to my {p}
        | dar acceso temporal a un invitado a mi {p}
    energy | reduce the power consumption of my {p} | reducir el consumo de energía de mi {p}
    accessibility | enable large text on my {p} | activar el texto grande en mi {p}
    calibration | calibrate the sensors on my {p} | calibrar los sensores de mi {p}
    integrations | connect my {p} to my smart home hub | conectar mi {p} con mi centro domótico
    """,
    3,
)

# tag | English title | Spanish title | English detail | Spanish detail
_ACCOUNT_ISSUES = _table(
    """
    billing | I was charged twice for my {plan} subscription
        | Me han cobrado dos veces la suscripción {plan}
        | My bank shows both charges as completed.
        | Mi banco muestra los dos cargos como completados.
    order-status | Order #{order} still hasn't shipped after {n} days
        | El pedido n.º {order} sigue sin enviarse después de {n} días
        | The order page still says "{status}".
        | La página del pedido sigue diciendo «{status}».
    refund | How do I get a refund for my {p}? | ¿Cómo pido el reembolso de mi {p}?
        | I bought it from the official store {n} days ago.
        | La compra la hice en la tienda oficial hace {n} días.
    login | I can't log in after resetting my password
        | No puedo iniciar sesión después de cambiar la contraseña
        | The app says my password is wrong even though I just set it.
        | La app dice que la contraseña es incorrecta aunque la acabo de cambiar.
    two-factor | Two-factor codes never arrive by SMS
        | Los códigos de verificación por SMS nunca llegan
        | I changed phone numbers last month and updated it in my profile.
        | Cambié de número el mes pasado y lo actualicé en mi perfil.
    warranty | Is my {p} still under warranty after {n} months?
        | ¿Mi {p} sigue en garantía después de {n} meses?
        | It {symptom} and I don't have the receipt any more.
        | Ahora {symptom} y ya no tengo el tique de compra.
    subscription | How do I cancel the {plan} plan? | ¿Cómo cancelo el plan {plan}?
        | The cancel button in the app is greyed out.
        | El botón de cancelar de la app aparece desactivado.
    shipping | The tracking number for my {p} doesn't work
        | El número de seguimiento de mi {p} no funciona
        | The carrier's website says the number does not exist.
        | La web de la empresa de transporte dice que el número no existe.
    returns | The return label for my {p} never arrived
        | Nunca me llegó la etiqueta de devolución de mi {p}
        | I already checked my spam folder. | Ya revisé la carpeta de spam.
    account | How do I merge two accounts? | ¿Cómo puedo unir dos cuentas?
        | I registered my devices under two different e-mail addresses.
        | Registré mis dispositivos con dos correos distintos.
    invoice | Where can I download the invoice for order #{order}?
        | ¿Dónde descargo la factura del pedido n.º {order}?
        | I need it with my company's tax number for expenses.
        | La necesito con el NIF de mi empresa para pasar gastos.
    promo-code | Promo code {promo} is rejected at checkout
        | El código promocional {promo} no funciona al pagar
        | The checkout page says the code has expired, but the e-mail says it is valid this month.
        | Al pagar dice que el código ha caducado, pero el correo dice que vale este mes.
    trade-in | Trade-in credit for my old {p} never showed up
        | Nunca recibí el crédito del programa de recompra de mi {p}
        | The courier picked the old one up {n} days ago.
        | El mensajero recogió el antiguo hace {n} días.
    privacy | How do I download all my personal data? | ¿Cómo descargo todos mis datos personales?
        | I want a copy of everything before I close my account.
        | Quiero una copia de todo antes de cerrar mi cuenta.
    """,
    5,
)

# tag | English noun phrase | Spanish noun phrase
_FEATURES = _table(
    """
    app | a dark mode in the app | un modo oscuro en la app
    privacy | local control without the cloud | control local sin pasar por la nube
    schedule | schedules based on my phone's location | horarios según la ubicación de mi móvil
    led | an option to turn off the LED | una opción para apagar el LED
    wifi | support for Wi-Fi 6E | compatibilidad con wifi 6E
    integrations | a public API for home automation | una API pública para domótica
    sharing | more than five user profiles | más de cinco perfiles de usuario
    widgets | home screen widgets | widgets para la pantalla de inicio
    energy | an energy usage report | un informe de consumo de energía
    accessibility | bigger fonts and a high-contrast theme
        | letra más grande y un tema de alto contraste
    backup | exporting settings to a file | exportar los ajustes a un archivo
    notifications | quiet hours for notifications | horas de silencio para las notificaciones
    web | a web dashboard | un panel web
    offline | an offline mode | un modo sin conexión
    """,
    3,
)

# Tags that describe the setting rather than the topic, added on top.
_EXTRA_TAGS = (
    "android", "ios", "app", "firmware-update", "wifi", "setup", "windows", "macos",
    "troubleshooting", "bug", "known-issue", "beta", "replacement", "5ghz", "2.4ghz",
    "usb-c", "chromeos", "ipad", "dual-band", "ethernet", "range", "latency",
    "interference", "outage", "support-ticket", "logs", "error-code",
)  # fmt: skip

# The tables below are English | Spanish.
_NOTHING = (("", ""),)  # a slot that is sometimes left out

_CONTEXTS = _NOTHING + _table(
    """
    after the latest firmware update | después de la última actualización de firmware
    since I changed internet providers | desde que cambié de proveedor de internet
    only when the app runs in the background | solo cuando la app está en segundo plano
    after I moved it to another room | desde que cambié el dispositivo de habitación
    right after unboxing | desde el primer día
    since the power outage last week | desde el apagón de la semana pasada
    when several devices are connected | cuando hay varios dispositivos conectados
    on my {os} phone | con mi móvil {os}
    every night around {hour}:00 | todas las noches sobre las {hour}:00
    after resetting my router | después de reiniciar mi router
    since the app updated to version {appver} | desde que la app se actualizó a la versión {appver}
    while on battery power | cuando funciona con batería
    """,
    2,
)
_TRIED = _table(
    """
    restarted the device | reinicié el dispositivo
    did a factory reset | hice un restablecimiento de fábrica
    reinstalled the app | reinstalé la app
    swapped the charging cable | cambié el cable de carga
    tried a different outlet | probé con otro enchufe
    turned off battery saver on my phone | desactivé el ahorro de batería del móvil
    moved it closer to the router | acerqué el dispositivo al router
    updated the app to the latest version | actualicé la app a la última versión
    removed it from my account and added it again
        | eliminé el dispositivo de mi cuenta y lo volví a añadir
    checked for firmware updates | busqué actualizaciones de firmware
    """,
    2,
)
_DETAILS = _table(
    """
    It started about {n} days ago. | Empezó hace unos {n} días.
    It happens several times a day. | Pasa varias veces al día.
    It only happens at night. | Solo pasa por la noche.
    My other devices work fine on the same network.
        | Mis otros dispositivos funcionan bien en la misma red.
    The app shows error `{code}`. | La app muestra el error `{code}`.
    Firmware is `{fw}`, the latest one as far as I can tell.
        | Tengo el firmware `{fw}`, que creo que es el último.
    """,
    2,
)
_GREETINGS = _NOTHING + _table(
    """
    Hi all, | Hola a todos:
    Hello, | Hola:
    Hi everyone, | Buenas:
    """,
    2,
)
_ASKS = _table(
    """
    Has anyone seen this before? | ¿A alguien más le ha pasado?
    Any ideas what else I can try? | ¿Alguna idea de qué más puedo probar?
    Is this a known issue? | ¿Es un problema conocido?
    Should I ask for a replacement? | ¿Debería pedir un reemplazo?
    Thanks in advance! | ¡Gracias de antemano!
    Any help is appreciated. | Cualquier ayuda es bienvenida.
    """,
    2,
)
_HOWTO_WANTS = _table(
    """
    I'd like to {task}, but I can't find the option. | Quiero {task}, pero no encuentro la opción.
    I need to {task} and I'm not sure where to start.
        | Necesito {task} y no sé por dónde empezar.
    """,
    2,
)
_HOWTO_LOOKED = _table(
    """
    I checked the manual and the FAQ with no luck.
        | Ya miré el manual y las preguntas frecuentes, sin suerte.
    The settings menu in the app doesn't seem to have it.
        | En el menú de ajustes de la app no aparece.
    I'm on app version {appver} if that matters.
        | Tengo la versión {appver} de la app, por si sirve de algo.
    Support pointed me to a help page that no longer exists.
        | El soporte me mandó a una página de ayuda que ya no existe.
    """,
    2,
)
_ACCOUNT_FOLLOW_UPS = _NOTHING + _table(
    """
    I contacted support by chat {n} days ago and I'm still waiting.
        | Escribí al soporte por chat hace {n} días y sigo esperando.
    The app just says "Something went wrong". | La app solo dice «Algo ha salido mal».
    I've been a customer for years and never had this problem.
        | Soy cliente desde hace años y nunca me había pasado.
    """,
    2,
)
_ORDER_STATUS = _table(
    """
    Processing | En preparación
    Awaiting shipment | Pendiente de envío
    Payment pending | Pago pendiente
    """,
    2,
)
_COMPLAINT_DEMANDS = _table(
    """
    I expect a full refund. | Espero un reembolso completo.
    This is not acceptable for a premium product.
        | Esto no es aceptable en un producto de gama alta.
    I'm seriously considering switching brands. | Me estoy planteando en serio cambiar de marca.
    Can someone from the staff look into this? | ¿Puede alguien del equipo revisar esto?
    """,
    2,
)
_IDEA_WISHES = _table(
    """
    It would be great to have {feature} on the {model}.
        | Me encantaría tener {feature} en el {model}.
    Could you add {feature}? | ¿Podríais añadir {feature}?
    """,
    2,
)
_IDEA_REASONS = _table(
    """
    Right now I have to do it by hand every day.
        | Ahora mismo tengo que hacerlo a mano todos los días.
    Other brands already offer this. | Otras marcas ya lo ofrecen.
    It would make a big difference for people with several devices.
        | Marcaría una gran diferencia para quienes tenemos varios dispositivos.
    My whole family would use it. | Toda mi familia lo usaría.
    """,
    2,
)
_IDEA_CLOSES = _table(
    """
    Vote if you want it too! | ¡Votad si también lo queréis!
    Is this on the roadmap? | ¿Está previsto en la hoja de ruta?
    Happy to beta test it. | Me ofrezco para probarlo en la beta.
    """,
    2,
)
_PRAISE_BODIES = _table(
    """
    Shout-out to {agent} from support, who walked me through the fix in {n} minutes.
        | Quiero dar las gracias a {agent}, del soporte, que me ayudó a solucionarlo en {n} minutos.
    After the update to `{fw}` everything works as it should, and the battery lasts longer too.
        | Después de actualizar a la `{fw}` todo funciona como debe, y además la batería dura más.
    The replacement arrived in {n} days and the setup took five minutes.
        | El reemplazo llegó en {n} días y la configuración me llevó cinco minutos.
    """,
    2,
)
_PRAISE_CLOSES = _table(
    """
    Just wanted to say thanks. | Solo quería dar las gracias.
    Great job, team! | ¡Buen trabajo, equipo!
    Keep it up. | Seguid así.
    """,
    2,
)

# Titles per kind of thread: English | Spanish
_TITLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "device-question": _table(
        """
        {p} {symptom} – is this a known issue? | Mi {p} {symptom}, ¿es un problema conocido?
        Why is it that my {p} {symptom}? | ¿Por qué mi {p} {symptom}?
        Anyone else whose {p} {symptom}{context}? | ¿Alguien más con un {model} que {symptom}?
        """,
        2,
    ),
    "device-problem": _table(
        """
        {p} {symptom}{context} | Mi {p} {symptom}{context}
        {model} {symptom} | {model} {symptom}
        Error {code}: {p} {symptom} | Error {code}: mi {p} {symptom}
        My {p} {symptom}{context} | {p} {symptom}{context}
        """,
        2,
    ),
    "device-complaint": _table(
        """
        Third replacement in {n} months and my {p} still {symptom}
            | Tercer reemplazo en {n} meses y mi {p} todavía {symptom}
        Very disappointed: my {p} {symptom}{context} | Muy decepcionado: mi {p} {symptom}{context}
        {model} {symptom} again and support won't help
            | Mi {model} {symptom} otra vez y el soporte no ayuda
        """,
        2,
    ),
    "howto": _table(
        """
        How do I {task}? | ¿Cómo puedo {task}?
        How can I {task}? | ¿Hay alguna forma de {task}?
        Is there a way to {task}? | ¿Cómo se hace para {task}?
        """,
        2,
    ),
    "account-complaint": _table(
        """
        Support ticket open for {n} weeks with no reply
            | Ticket de soporte abierto desde hace {n} semanas sin respuesta
        Nobody from support has answered me in {n} days
            | Nadie del soporte me responde desde hace {n} días
        """,
        2,
    ),
    "idea": _table(
        """
        Feature request: {feature} for the {model} | Sugerencia: {feature} para el {model}
        Idea: {feature} | Idea: {feature}
        Please add {feature} to the {model} | Por favor, añadid {feature} al {model}
        """,
        2,
    ),
    "praise": _table(
        """
        Thanks to the support team for fixing my {p}
            | Gracias al equipo de soporte por arreglar mi {p}
        Firmware {fw} finally fixed my {model} | El firmware {fw} por fin arregló mi {model}
        Two years with my {p} and still going strong
            | Dos años con mi {p} y funciona como el primer día
        """,
        2,
    ),
}

_ANSWER_INTROS = _NOTHING + _table(
    """
    This usually happens when {cause}. | Esto suele pasar cuando {cause}.
    I had the same issue with my {model}. | Tuve el mismo problema con mi {model}.
    Try this, it fixed it for me: | Prueba esto, a mí me lo solucionó:
    Support told me to do the following: | El soporte me dijo que hiciera lo siguiente:
    A few things to check: | Algunas cosas que puedes revisar:
    """,
    2,
)
_CAUSES = _table(
    """
    the device is on a crowded 2.4 GHz channel | el dispositivo está en un canal de 2,4 GHz saturado
    a firmware update was interrupted | se interrumpe una actualización de firmware
    the app keeps an expired login session | la app guarda una sesión caducada
    the battery calibration is off | la calibración de la batería está desajustada
    the router hands the device between bands | el router cambia el dispositivo de banda
    the phone kills the app to save battery | el móvil cierra la app para ahorrar batería
    """,
    2,
)
_DEVICE_STEPS = _table(
    """
    Open the app and go to **Settings > Device > Advanced**.
        | Abre la app y ve a **Ajustes > Dispositivo > Avanzado**.
    Hold the power button for {secs} seconds until the light blinks {color}.
        | Pulsa el botón de encendido {secs} segundos, hasta que la luz parpadee en {color}.
    Unplug the device for at least 30 seconds, then plug it back in.
        | Desenchufa el dispositivo al menos 30 segundos y vuelve a enchufarlo.
    Make sure the firmware is at least `{fw}`. | Comprueba que el firmware sea al menos la `{fw}`.
    Change the router's Wi-Fi channel to `1`, `6` or `11`.
        | Cambia el canal wifi del router a `1`, `6` u `11`.
    Forget the device in your phone's Bluetooth settings and pair it again.
        | Olvida el dispositivo en los ajustes Bluetooth del móvil y vuelve a emparejarlo.
    Log out of the app, clear its cache and log back in.
        | Cierra sesión en la app, borra la caché y vuelve a entrar.
    Turn off battery optimization for the app on Android.
        | Desactiva la optimización de batería para la app en Android.
    Use the original charger; some USB-C cables only deliver 5 W.
        | Usa el cargador original; algunos cables USB-C solo dan 5 W.
    Reserve a fixed IP for the device in the router, e.g. `192.168.1.{ip}`.
        | Reserva una IP fija para el dispositivo en el router, por ejemplo `192.168.1.{ip}`.
    Split the 2.4 GHz and 5 GHz networks so they have different names.
        | Separa las redes de 2,4 GHz y 5 GHz para que tengan nombres distintos.
    Do a factory reset with the pinhole button (hold it for 10 seconds).
        | Haz un restablecimiento de fábrica con el botón del agujero (mantenlo 10 segundos).
    Note the serial number under **Settings > About** and open a ticket if nothing helps.
        | Apunta el número de serie de **Ajustes > Acerca de** y abre un ticket si nada funciona.
    Install the beta app (`{appver}`); it has a fix for this.
        | Instala la app beta (`{appver}`); trae una corrección para esto.
    Move the device away from the microwave and cordless phones.
        | Aleja el dispositivo del microondas y de los teléfonos inalámbricos.
    """,
    2,
)
_ACCOUNT_STEPS = _table(
    """
    Go to **Account > Billing** on the website and check the payment history.
        | Entra en **Cuenta > Facturación** en la web y revisa el historial de pagos.
    Contact support by chat with your order number; they usually answer within a day.
        | Contacta con soporte por chat con tu número de pedido; suelen responder en un día.
    Duplicate charges are often pre-authorizations that disappear after 3-5 days.
        | Los cargos duplicados suelen ser preautorizaciones que desaparecen en 3-5 días.
    Sign out on every device and sign in again.
        | Cierra sesión en todos los dispositivos y vuelve a entrar.
    Request the data export under **Account > Privacy**; the link arrives by e-mail.
        | Pide la exportación en **Cuenta > Privacidad**; el enlace llega por correo.
    Check that the promo code is for your region (`{promo}` is EU only).
        | Comprueba que el código sea de tu región (`{promo}` es solo para la UE).
    Ask for the case to be escalated after 48 hours. | Pide que escalen el caso pasadas 48 horas.
    The invoice is under **Orders > Details > Download PDF**.
        | La factura está en **Pedidos > Detalles > Descargar PDF**.
    """,
    2,
)
_ANSWER_CLOSES = _NOTHING + _table(
    """
    Hope that helps! | ¡Espero que te sirva!
    Let us know if it works. | Cuéntanos si funciona.
    Worked for me on two units. | A mí me funcionó en dos unidades.
    """,
    2,
)
_REPLIES = _table(
    """
    +1, this would make the {model} much better. | +1, esto mejoraría mucho el {model}.
    Same experience here. I hope the team reads this.
        | Me pasa lo mismo. Espero que el equipo lo lea.
    Thanks for sharing, good to hear it got sorted.
        | Gracias por compartirlo, me alegro de que se haya solucionado.
    Have you tried contacting support via chat? It was much faster for me.
        | ¿Has probado a contactar con soporte por chat? A mí me atendieron mucho más rápido.
    Agreed. The {model} is great otherwise. | De acuerdo. Por lo demás, el {model} es genial.
    """,
    2,
)
_RUN_THIS = (
    "If you're comfortable with a terminal, run this from a computer on the same network:",
    "Si te manejas con la terminal, ejecuta esto desde un ordenador en la misma red:",
)
_CONFIG = (
    "These are the router settings that made it stable for me:",
    "Esta es la configuración del router con la que me va estable:",
)
# (English intro, Spanish intro, fenced block)
_CODE_BLOCKS = (
    (*_RUN_THIS, "```sh\nping -c 20 192.168.1.{ip}\n```"),
    (*_RUN_THIS, "```sh\ncurl -I http://192.168.1.{ip}/status\n```"),
    (*_RUN_THIS, "```sh\nadb logcat | grep -i {line}\n```"),
    (*_CONFIG, "```yaml\nwifi:\n  band: 2.4ghz\n  channel: {ch}\n```"),
)
_QUESTION_COMMENTS = _table(
    """
    Which firmware version are you on? | ¿Qué versión de firmware tienes?
    Did you try a different cable? | ¿Has probado con otro cable?
    Same problem here with the {model}. | A mí me pasa lo mismo con el {model}.
    Is your router on the 2.4 GHz band? | ¿Tu router está en la banda de 2,4 GHz?
    Can you post the error code from the app? | ¿Puedes poner el código de error que muestra la app?
    Any update on this? | ¿Alguna novedad?
    Which phone are you using? | ¿Qué móvil usas?
    """,
    2,
)
_ANSWER_COMMENTS = _table(
    """
    Thanks, that worked! | ¡Gracias, funcionó!
    This fixed it for me too. | A mí también me lo solucionó.
    Didn't work for me, still the same. | A mí no me funcionó, sigue igual.
    Step 2 was the key. | El paso 2 fue la clave.
    Does this also apply to the {model}? | ¿Esto sirve también para el {model}?
    Careful: a factory reset deletes all your schedules.
        | Cuidado: el restablecimiento de fábrica borra todos los horarios.
    """,
    2,
)

_OS = ("Android 14", "Android 15", "Android 13", "iOS 18", "iOS 17", "iPadOS 18", "HarmonyOS 4")
_PLANS = ("Plus", "Premium", "Family", "Care+", "Cloud 30", "Pro")
_COLORS = (("white", "blanco"), ("blue", "azul"), ("orange", "naranja"), ("green", "verde"))
_PROMOS = ("SAVE", "WELCOME", "SPRING", "FAMILY")

_EN_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Chris", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
    "Steven", "Ashley", "Paul", "Emily", "Andrew", "Kimberly", "Josh", "Donna", "Kevin",
    "Michelle", "Brian", "Carol", "George", "Amanda", "Tim", "Melissa", "Ryan", "Laura", "Jason",
    "Rebecca", "Eric", "Olivia", "Priya", "Wei", "Aisha", "Omar", "Kenji", "Noah", "Emma", "Liam",
)  # fmt: skip
_EN_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green",
    "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Campbell",
    "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers",
    "Patel", "Nguyen", "Kim", "Chen",
)  # fmt: skip
_ES_FIRST = (
    "María", "Carmen", "Josefa", "Isabel", "Ana", "Laura", "Lucía", "Marta", "Elena", "Sara",
    "Paula", "Cristina", "Raquel", "Sofía", "Alba", "Antonio", "José", "Manuel", "Francisco",
    "David", "Juan", "Javier", "Daniel", "Carlos", "Jesús", "Alejandro", "Miguel", "Rafael",
    "Pablo", "Sergio", "Fernando", "Jorge", "Alberto", "Luis", "Álvaro", "Diego", "Adrián",
    "Raúl", "Iván", "Rubén", "Valentina", "Camila", "Mateo", "Santiago", "Andrés", "Gabriela",
)  # fmt: skip
_ES_LAST = (
    "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez",
    "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez",
    "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil",
    "Ramírez", "Serrano", "Blanco", "Molina", "Morales", "Suárez", "Ortega", "Delgado", "Castro",
    "Ortiz", "Rubio", "Marín", "Sanz", "Núñez", "Iglesias", "Medina", "Garrido", "Cortés",
    "Castillo", "Santos", "Lozano", "Guerrero", "Cano", "Prieto",
)  # fmt: skip
_HANDLE_WORDS = (
    ("quiet", "happy", "tech", "night", "lucky", "retro", "pixel", "cosmic", "rusty", "sunny"),
    ("owl", "fox", "tinkerer", "geek", "panda", "rider", "wizard", "otter", "falcon", "maker"),
)

_TAG_VOCABULARY: tuple[str, ...] = tuple(
    dict.fromkeys(
        itertools.chain(
            (row[0] for row in _PRODUCTS),
            (row[0] for row in _SYMPTOMS),
            (row[0] for row in _TASKS),
            (row[0] for row in _ACCOUNT_ISSUES),
            (row[0] for row in _FEATURES),
            _EXTRA_TAGS,
        )
    )
)


# --------------------------------------------------------------------------------------------
# Randomness
# --------------------------------------------------------------------------------------------


def _rng(key: str) -> random.Random:
    # Reproducible test data, not secrets: a seeded Mersenne Twister per record is the point.
    return random.Random(key)  # noqa: S311


def _unit(salt: int, n: int) -> float:
    """SplitMix64 at position n, as a float in [0, 1): far cheaper than seeding a Random."""
    x = (salt + n * _GOLDEN64) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return ((x ^ (x >> 31)) >> 11) / float(1 << 53)


def _salt(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


# random.choice and randint go through getrandbits in Python code; these are several times
# faster, and a hair of bias does not matter for test data.
def _choice(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def _between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))  # gauss: faster than normalvariate


def _lomax(rng: random.Random, scale: float, shape: float) -> float:
    """Pareto type II: mostly small values and a long tail (votes, answer counts)."""
    return scale * (math.pow(1.0 - rng.random(), -1.0 / shape) - 1.0)


class _Zipf(Generic[T]):
    """Draws items with weight 1 / rank**exponent: the first few dominate."""

    def __init__(self, items: Sequence[T], exponent: float = 1.0) -> None:
        self.items = tuple(items)
        self._cumulative = list(
            itertools.accumulate(1.0 / rank**exponent for rank in range(1, len(self.items) + 1))
        )
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect.bisect_right(self._cumulative, rng.random() * self._total)]


_PRODUCT_RANKS = _Zipf(range(len(_PRODUCTS)))
_SYMPTOM_RANKS = _Zipf(range(len(_SYMPTOMS)))
_TASK_RANKS = _Zipf(range(len(_TASKS)))
_ISSUE_RANKS = _Zipf(range(len(_ACCOUNT_ISSUES)))
_FEATURE_RANKS = _Zipf(range(len(_FEATURES)))
_EXTRA_TAG_RANKS = _Zipf(_EXTRA_TAGS)
_SUFFIX_RANKS = _Zipf(_MODEL_SUFFIXES)

_KINDS = (
    (0.62, ThreadKind.QUESTION),
    (0.82, ThreadKind.PROBLEM),
    (0.89, ThreadKind.IDEA),
    (0.95, ThreadKind.COMPLAINT),
    (1.0, ThreadKind.PRAISE),
)
_SOLVABLE = (ThreadKind.QUESTION, ThreadKind.PROBLEM)
_DUPLICATE_DRAW = 0.019  # about 1% of all threads once kinds and dates have ruled some out

# Outlines keep time as whole seconds since the epoch; records get aware UTC datetimes.
_DAY = 86400
_ANCHOR_TS = int(ANCHOR.timestamp())
_WINDOW_S = int(WINDOW.total_seconds())
_START_TS = _ANCHOR_TS - _WINDOW_S


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


# --------------------------------------------------------------------------------------------
# A thread's outline (everything several parts must agree on) and its topic
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Outline:
    """What every part must agree on about thread k, drawn first from the thread's stream.

    Each part then continues that same stream for what only it needs: the question's author
    (questions, answers, comments), then the answerers (answers), then its own text. The
    votes part stops before the authors; nothing else depends on how far a part went.
    """

    number: int
    question_id: int
    rng: random.Random  # the thread's stream, positioned after the outline
    created: int  # seconds since the epoch, like every time here
    locale: str
    kind: ThreadKind
    topic: _Topic  # the original's, for a duplicate
    heat: float  # popularity: scales votes and views together
    up: int
    down: int
    answer_times: list[int]
    answer_up: list[int]
    answer_down: list[int]
    accepted: int | None  # index into the answers

    @property
    def es(self) -> bool:
        return self.locale == "es"

    @property
    def last_activity(self) -> int:
        return self.answer_times[-1] if self.answer_times else self.created


@dataclass(frozen=True, slots=True)
class _Topic:
    """What a thread is about; a duplicate reuses its original's topic."""

    product: int
    model: str
    symptom: int
    task: int
    issue: int
    feature: int
    roll: float  # picks the family within the thread's kind

    def family(self, kind: ThreadKind) -> str:
        if kind is ThreadKind.IDEA:
            return _IDEA
        if kind is ThreadKind.PRAISE:
            return _PRAISE
        if kind is ThreadKind.QUESTION:
            return _HOWTO if self.roll < 0.45 else _DEVICE if self.roll < 0.8 else _ACCOUNT
        if kind is ThreadKind.PROBLEM:
            return _DEVICE if self.roll < 0.8 else _ACCOUNT
        return _DEVICE if self.roll < 0.6 else _ACCOUNT  # complaints

    def topic_tag(self, family: str) -> str:
        if family == _HOWTO:
            return _TASKS[self.task][0]
        if family == _ACCOUNT:
            return _ACCOUNT_ISSUES[self.issue][0]
        if family == _IDEA:
            return _FEATURES[self.feature][0]
        return _SYMPTOMS[self.symptom][0]


def _topic(rng: random.Random) -> _Topic:
    product = _PRODUCT_RANKS.pick(rng)
    model = f"{_PRODUCTS[product][3]} {_between(rng, 1, 9)}{_SUFFIX_RANKS.pick(rng)}"
    return _Topic(
        product=product,
        model=model,
        symptom=_SYMPTOM_RANKS.pick(rng),
        task=_TASK_RANKS.pick(rng),
        issue=_ISSUE_RANKS.pick(rng),
        feature=_FEATURE_RANKS.pick(rng),
        roll=rng.random(),
    )


def _pool(thread: int) -> int:
    """How many users thread `thread` may draw authors from; grows with k, never with N."""
    return max(FOUNDERS, (thread + 2) // 3)


def _head(rng: random.Random) -> tuple[int, str, ThreadKind]:
    """The first draws of a thread's outline: cheap enough to check duplicates against."""
    created = _ANCHOR_TS - 1 - int((_WINDOW_S - 2) * rng.random() ** 1.25)
    locale = "es" if rng.random() < 0.2 else "en"
    roll = rng.random()
    for threshold, kind in _KINDS:
        if roll < threshold:
            return created, locale, kind
    return created, locale, ThreadKind.PRAISE


def _answer_count(rng: random.Random) -> int:
    if rng.random() < 0.2:
        return 0
    return min(MAX_ANSWERS, 1 + int(_lomax(rng, 3.0, 2.5)))


def _downvotes(rng: random.Random, up: int) -> int:
    stray = 1 if rng.random() < 0.02 else 0
    return int(up * 0.05 + rng.random()) + stray


# --------------------------------------------------------------------------------------------
# The source
# --------------------------------------------------------------------------------------------


class _Position:
    """How many records a part has yielded; the part's `position` callable."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


def _part(label: str, records: Iterable[T], size: int | None) -> Part[T]:
    position = _Position()

    def stream() -> Iterator[T]:
        for record in records:
            position.count += 1
            yield record

    return Part(label=label, records=stream(), size=size, position=position, skips=Skips())


class SyntheticSource:
    """`threads` threads of a made-up brand's support community; see the module docstring."""

    site_label = SITE_LABEL

    def __init__(self, threads: int, *, seed: int = 1) -> None:
        if threads < 0:
            raise ValueError("threads must not be negative")
        self.threads = threads
        self.seed = seed
        self.name = f"synthetic:{seed}"  # no scale: a larger seed run extends a smaller one
        self.user_count = _pool(threads)
        self._joined_salt = _salt(f"{seed}:joined")
        self._duplicate_salt = _salt(f"{seed}:duplicate")

    # -- parts ---------------------------------------------------------------------------------

    def users(self) -> Part[UserRecord]:
        records = (self._user(user) for user in range(1, self.user_count + 1))
        return _part("users", records, self.user_count)

    def tags(self) -> Part[str]:
        return _part("tags", iter(_TAG_VOCABULARY), len(_TAG_VOCABULARY))

    def questions(self) -> Part[QuestionRecord]:
        records = (self._question(self._outline(k)) for k in range(1, self.threads + 1))
        return _part("questions", records, self.threads)

    def answers(self) -> Part[AnswerRecord]:
        return _part("answers", self._answers(), None)

    def comments(self) -> Part[CommentRecord]:
        return _part("comments", self._comments(), None)

    def votes(self) -> Part[VoteTotals]:
        return _part("votes", self._votes(), None)

    def duplicates(self) -> Part[DuplicateLink]:
        return _part("duplicates", self._duplicates(), None)

    def closures(self) -> Part[Closure]:
        # Synthetic threads are closed only as duplicates (by `duplicates`).
        return _part("closures", iter(()), 0)

    # -- users ---------------------------------------------------------------------------------

    def _joined(self, user: int) -> int:
        share = _unit(self._joined_salt, user)
        if user <= FOUNDERS:
            return _START_TS - int((30 + 400 * share) * _DAY)
        return _START_TS - 120 * _DAY + int((_WINDOW_S + 120 * _DAY) * share)

    def _author(self, rng: random.Random, thread: int, when: int, exponent: float) -> int:
        """A power-law pick among the users who had joined by `when`."""
        pool = _pool(thread)
        for _ in range(3):
            user = 1 + int(pool * rng.random() ** exponent)
            if self._joined(user) < when:
                return user
        return _between(rng, 1, FOUNDERS)  # they joined before any thread started

    def _user(self, user: int) -> UserRecord:
        rng = _rng(f"{self.seed}:u:{user}")
        locale = "es" if rng.random() < 0.2 else "en"
        reputation = 1 + int(20000 / user**0.85 * _lognormal(rng, 1.0, 0.8))
        return UserRecord(
            external_id=user,
            display_name=_display_name(rng, locale),
            reputation=reputation,
            created_at=_utc(self._joined(user)),
            locale=locale,
        )

    # -- the outline of a thread ---------------------------------------------------------------

    def _outline(self, k: int) -> _Outline:
        rng = _rng(f"{self.seed}:t:{k}")
        created, locale, kind = _head(rng)
        topic = _topic(rng)
        original = self._duplicate_of(k, created, kind)
        if original is not None:
            original_rng = _rng(f"{self.seed}:t:{original}")
            _head(original_rng)
            topic = _topic(original_rng)
        heat = _lognormal(rng, 1.0, 0.75)
        up = int(_lomax(rng, 1.3 * heat, 1.8))
        down = _downvotes(rng, up)

        times: list[int] = []
        when = created
        for i in range(_answer_count(rng)):
            when += 1 + int(3600 * _lognormal(rng, 4.0 if i == 0 else 10.0, 1.6))
            if when >= _ANCHOR_TS:
                break  # not written yet on the anchor date
            times.append(when)

        accepted: int | None = None
        if times and rng.random() < (0.5 if kind in _SOLVABLE else 0.12):
            accepted = 0 if rng.random() < 0.55 else int(rng.random() * len(times))

        ups: list[int] = []
        downs: list[int] = []
        for i in range(len(times)):
            scale = heat * (2.0 if i == accepted else 1.0) / (1.0 + 0.3 * i)
            answer_up = int(_lomax(rng, scale, 1.8))
            ups.append(answer_up)
            downs.append(_downvotes(rng, answer_up))

        return _Outline(
            number=k,
            question_id=k * POST_ID_STRIDE,
            rng=rng,
            created=created,
            locale=locale,
            kind=kind,
            topic=topic,
            heat=heat,
            up=up,
            down=down,
            answer_times=times,
            answer_up=ups,
            answer_down=downs,
            accepted=accepted,
        )

    def _asker(self, outline: _Outline) -> int | None:
        """The question's author: the first draw after the outline."""
        if outline.rng.random() < 0.015:
            return None
        return self._author(outline.rng, outline.number, outline.created, 1.5)

    def _answerers(self, outline: _Outline, asker: int | None) -> list[int | None]:
        """The answers' authors: the draws right after the asker."""
        rng = outline.rng
        answerers: list[int | None] = []
        for answered in outline.answer_times:
            answerer: int | None = None
            if rng.random() >= 0.01:
                answerer = self._author(rng, outline.number, answered, 2.5)
                if answerer == asker:  # people rarely answer their own question
                    answerer = self._author(rng, outline.number, answered, 2.5)
            answerers.append(answerer)
        return answerers

    def _duplicate_of(self, k: int, created: int, kind: ThreadKind) -> int | None:
        """The earlier thread k duplicates, for about 1% of questions and problems."""
        if k < 2 or kind not in _SOLVABLE or _unit(self._duplicate_salt, k) >= _DUPLICATE_DRAW:
            return None
        rng = _rng(f"{self.seed}:d:{k}")
        for _ in range(4):
            original = _between(rng, 1, k - 1)
            original_created, _, original_kind = _head(_rng(f"{self.seed}:t:{original}"))
            if original_created < created and original_kind in _SOLVABLE:
                return original
        return None

    # -- records -------------------------------------------------------------------------------

    def _question(self, outline: _Outline) -> QuestionRecord:
        author = self._asker(outline)
        rng, topic = outline.rng, outline.topic
        family = topic.family(outline.kind)
        slots = _Slots(rng, topic, outline.es)
        title, body = _question_text(rng, family, outline.kind, slots)

        tags = [topic.topic_tag(family)]
        if family != _ACCOUNT or rng.random() < 0.5:
            tags.insert(0, _PRODUCTS[topic.product][0])
        extra = rng.random()
        for threshold in (0.45, 0.75, 0.92):
            if extra >= threshold:
                tags.append(_EXTRA_TAG_RANKS.pick(rng))

        age_days = (_ANCHOR_TS - outline.created) / _DAY
        views = _lognormal(rng, 120.0, 1.0) * outline.heat * (1 + age_days / 240)
        if outline.answer_times:
            views *= 1.6
        accepted = outline.accepted
        return QuestionRecord(
            external_id=outline.question_id,
            author_external_id=author,
            title=title,
            body_markdown=body,
            tags=list(dict.fromkeys(tags)),
            view_count=1 + int(views),
            score=outline.up - outline.down,
            created_at=_utc(outline.created),
            last_activity_at=_utc(outline.last_activity),
            accepted_answer_external_id=(
                None if accepted is None else outline.question_id + 1 + accepted
            ),
            locale=outline.locale,
            kind=outline.kind,
        )

    def _answers(self) -> Iterator[AnswerRecord]:
        for k in range(1, self.threads + 1):
            outline = self._outline(k)
            if not outline.answer_times:
                continue
            answerers = self._answerers(outline, self._asker(outline))
            rng, topic, es = outline.rng, outline.topic, outline.es
            family = topic.family(outline.kind)
            for i, answered in enumerate(outline.answer_times):
                yield AnswerRecord(
                    external_id=outline.question_id + 1 + i,
                    question_external_id=outline.question_id,
                    author_external_id=answerers[i],
                    body_markdown=_answer_text(rng, family, _Slots(rng, topic, es)),
                    score=outline.answer_up[i] - outline.answer_down[i],
                    created_at=_utc(answered),
                )

    def _comments(self) -> Iterator[CommentRecord]:
        for k in range(1, self.threads + 1):
            outline = self._outline(k)
            asker = self._asker(outline)
            rng, lang, model = outline.rng, int(outline.es), outline.topic.model
            posts = [(outline.question_id, outline.created)]
            posts += [(outline.question_id + 1 + i, t) for i, t in enumerate(outline.answer_times)]
            for post_id, posted in posts:
                count = 0
                while count < MAX_COMMENTS and rng.random() < 1 / 3:
                    count += 1
                for i in range(1, count + 1):
                    commented = posted + 1 + int(3600 * _lognormal(rng, 2.0, 1.5))
                    if commented >= _ANCHOR_TS:
                        break
                    on_question = post_id == outline.question_id
                    text = _choice(rng, _QUESTION_COMMENTS if on_question else _ANSWER_COMMENTS)
                    author: int | None
                    author_name: str | None = None
                    roll = rng.random()
                    if roll < 0.03:  # the account is gone; its name stays on the comment
                        author, author_name = None, _display_name(rng, outline.locale)
                    elif roll < 0.38 and asker is not None:
                        author = asker  # the asker answering a clarification
                    else:
                        author = self._author(rng, k, commented, 2.2)
                    score = 0 if rng.random() < 0.8 else 1 + int(_lomax(rng, 1.0, 1.5))
                    yield CommentRecord(
                        external_id=post_id * COMMENT_ID_STRIDE + i,
                        post_external_id=post_id,
                        author_external_id=author,
                        author_name=author_name,
                        text=text[lang].format(model=model),
                        score=score,
                        created_at=_utc(commented),
                    )

    def _votes(self) -> Iterator[VoteTotals]:
        for k in range(1, self.threads + 1):
            outline = self._outline(k)
            if outline.up or outline.down:
                yield VoteTotals(outline.question_id, outline.up, outline.down)
            for i, (up, down) in enumerate(
                zip(outline.answer_up, outline.answer_down, strict=True)
            ):
                if up or down:
                    yield VoteTotals(outline.question_id + 1 + i, up, down)

    def _duplicates(self) -> Iterator[DuplicateLink]:
        for k in range(2, self.threads + 1):
            if _unit(self._duplicate_salt, k) >= _DUPLICATE_DRAW:
                continue  # the same test _duplicate_of starts with, before seeding a stream
            created, _, kind = _head(_rng(f"{self.seed}:t:{k}"))
            original = self._duplicate_of(k, created, kind)
            if original is not None:
                yield DuplicateLink(k * POST_ID_STRIDE, original * POST_ID_STRIDE)


if TYPE_CHECKING:

    def _is_a_source(source: SyntheticSource) -> Source:
        return source  # mypy checks SyntheticSource against the Source protocol here


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def _display_name(rng: random.Random, locale: str) -> str:
    es = locale == "es"
    first = _choice(rng, _ES_FIRST if es else _EN_FIRST)
    last = _choice(rng, _ES_LAST if es else _EN_LAST)
    style = rng.random()
    if style < 0.45:
        if es and rng.random() < 0.4:
            return f"{first} {last} {_choice(rng, _ES_LAST)}"
        return f"{first} {last}"
    if style < 0.65:
        return f"{first} {last[0]}."
    if style < 0.8:
        return first
    if rng.random() < 0.5:
        adjective, noun = _choice(rng, _HANDLE_WORDS[0]), _choice(rng, _HANDLE_WORDS[1])
        return f"{adjective}_{noun}{_between(rng, 1, 99)}"
    return f"{first.lower()}{_between(rng, 1, 999)}"


class _Slots(dict[str, str]):
    """The values templates mention, in the thread's language, drawn when first asked for
    (`str.format_map` looks missing keys up through `__missing__`). Within one post a slot
    keeps its value, so a title and its body name the same model."""

    def __init__(self, rng: random.Random, topic: _Topic, es: bool) -> None:
        super().__init__()
        self.rng = rng
        self.topic = topic
        self.es = es
        self.lang = int(es)

    def __missing__(self, key: str) -> str:
        value = _SLOT_MAKERS[key](self)
        self[key] = value
        return value

    def fill(self, template: str) -> str:
        return template.format_map(self)


def _product_phrase(slots: _Slots) -> str:
    noun, model = slots["noun"], slots.topic.model
    if slots.rng.random() < 0.5:
        return noun
    return f"{noun} {model}" if slots.es else f"{model} {noun}"


def _context(slots: _Slots) -> str:
    """Where it happens, with its leading space: templates write "{symptom}{context}"."""
    context = _choice(slots.rng, _CONTEXTS)[slots.lang]
    return f" {slots.fill(context)}" if context else ""


_SLOT_MAKERS: dict[str, Callable[[_Slots], str]] = {
    "p": _product_phrase,
    "noun": lambda s: _PRODUCTS[s.topic.product][1 + s.lang],
    "model": lambda s: s.topic.model,
    "line": lambda s: _PRODUCTS[s.topic.product][3].lower(),
    "symptom": lambda s: s.fill(_SYMPTOMS[s.topic.symptom][1 + s.lang]),
    "task": lambda s: s.fill(_TASKS[s.topic.task][1 + s.lang]),
    "issue": lambda s: s.fill(_ACCOUNT_ISSUES[s.topic.issue][1 + s.lang]),
    "issue_detail": lambda s: s.fill(_ACCOUNT_ISSUES[s.topic.issue][3 + s.lang]),
    "feature": lambda s: _FEATURES[s.topic.feature][1 + s.lang],
    "context": _context,
    "cause": lambda s: _choice(s.rng, _CAUSES)[s.lang],
    "code": lambda s: f"E-{_between(s.rng, 100, 9999)}",
    "fw": lambda s: f"{_between(s.rng, 2, 6)}.{_between(s.rng, 0, 24)}.{_between(s.rng, 0, 9)}",
    "appver": lambda s: f"{_between(s.rng, 3, 9)}.{_between(s.rng, 0, 40)}",
    "os": lambda s: _choice(s.rng, _OS),
    "n": lambda s: str(_between(s.rng, 2, 21)),
    "pct": lambda s: str(5 * _between(s.rng, 1, 19)),
    "hour": lambda s: _choice(s.rng, ("19", "20", "21", "22", "23", "00", "01", "02")),
    "order": lambda s: str(_between(s.rng, 10_000_000, 99_999_999)),
    "plan": lambda s: _choice(s.rng, _PLANS),
    "promo": lambda s: f"{_choice(s.rng, _PROMOS)}{_between(s.rng, 10, 40)}",
    "agent": lambda s: _choice(s.rng, _ES_FIRST if s.es else _EN_FIRST),
    "status": lambda s: _choice(s.rng, _ORDER_STATUS)[s.lang],
    "secs": lambda s: str(_between(s.rng, 5, 15)),
    "color": lambda s: _choice(s.rng, _COLORS)[s.lang],
    "ip": lambda s: str(_between(s.rng, 20, 250)),
    "ch": lambda s: _choice(s.rng, ("1", "6", "11")),
}


def _title(template: str, slots: _Slots) -> str:
    """Fill, tidy and clip a title to 15-150 characters."""
    title = " ".join(slots.fill(template).split()).replace(" ?", "?")
    title = title[0].upper() + title[1:]
    if len(title) > 150:
        title = title[: title.rfind(" ", 0, 148)].rstrip(",;:") + "…"
    return title


def _paragraphs(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def _question_text(
    rng: random.Random, family: str, kind: ThreadKind, slots: _Slots
) -> tuple[str, str]:
    lang = slots.lang
    greeting = _choice(rng, _GREETINGS)[lang]
    ask = _choice(rng, _ASKS)[lang]
    if family == _HOWTO:
        title = _choice(rng, _TITLES["howto"])[lang]
        want = _choice(rng, _HOWTO_WANTS)[lang]
        looked = _choice(rng, _HOWTO_LOOKED)[lang]
        body = _paragraphs(greeting, f"{want} {looked}", ask)
    elif family == _DEVICE:
        key = {ThreadKind.QUESTION: "device-question", ThreadKind.COMPLAINT: "device-complaint"}
        title = _choice(rng, _TITLES[key.get(kind, "device-problem")])[lang]
        opening = ("My {p} {symptom}{context}.", "Mi {p} {symptom}{context}.")[lang]
        detail = _choice(rng, _DETAILS)[lang]
        first = int(rng.random() * len(_TRIED))
        second = int(rng.random() * (len(_TRIED) - 1))
        second += second >= first  # two different things tried
        tried = (
            f"I already {_TRIED[first][0]} and {_TRIED[second][0]}, but nothing changed.",
            f"Ya {_TRIED[first][1]} y {_TRIED[second][1]}, pero sigue igual.",
        )[lang]
        facts = ""
        if rng.random() < 0.4:
            labels = (("Details", "Model", "Phone"), ("Datos", "Modelo", "Móvil"))[lang]
            facts = f"{labels[0]}:\n\n- {labels[1]}: {{model}}\n- Firmware: `{{fw}}`"
            facts += f"\n- {labels[2]}: {{os}}"
        closing = _choice(rng, _COMPLAINT_DEMANDS)[lang] if kind is ThreadKind.COMPLAINT else ask
        body = _paragraphs(greeting, f"{opening} {detail}", tried, facts, closing)
    elif family == _ACCOUNT:
        if kind is ThreadKind.COMPLAINT:
            title = _choice(rng, _TITLES["account-complaint"])[lang]
            closing = _choice(rng, _COMPLAINT_DEMANDS)[lang]
        else:
            title = "{issue}"
            closing = ask
        issue = "{issue}" if slots["issue"].endswith("?") else "{issue}."
        follow_up = _choice(rng, _ACCOUNT_FOLLOW_UPS)[lang]
        body = _paragraphs(greeting, f"{issue} {{issue_detail}} {follow_up}", closing)
    elif family == _IDEA:
        title = _choice(rng, _TITLES["idea"])[lang]
        wish = _choice(rng, _IDEA_WISHES)[lang]
        reason = _choice(rng, _IDEA_REASONS)[lang]
        body = _paragraphs(f"{wish} {reason}", _choice(rng, _IDEA_CLOSES)[lang])
    else:
        title = _choice(rng, _TITLES["praise"])[lang]
        text = _choice(rng, _PRAISE_BODIES)[lang]
        body = _paragraphs(greeting, text, _choice(rng, _PRAISE_CLOSES)[lang])
    return _title(title, slots), slots.fill(body)


def _answer_text(rng: random.Random, family: str, slots: _Slots) -> str:
    lang = slots.lang
    if family in (_IDEA, _PRAISE) or (family == _DEVICE and rng.random() < 0.1):
        return slots.fill(_choice(rng, _REPLIES)[lang])
    pool = _ACCOUNT_STEPS if family == _ACCOUNT else _DEVICE_STEPS
    steps = [step[lang] for step in rng.sample(pool, _between(rng, 2, 5))]
    style = rng.random()
    if style < 0.55:
        listed = "\n".join(f"{n}. {step}" for n, step in enumerate(steps, start=1))
    elif style < 0.8:
        listed = "\n".join(f"- {step}" for step in steps)
    else:
        listed = " ".join(steps)
    code = ""
    if family != _ACCOUNT and rng.random() < 0.1:
        block = _choice(rng, _CODE_BLOCKS)
        code = f"{block[lang]}\n\n{block[2]}"
    intro = _choice(rng, _ANSWER_INTROS)[lang]
    close = _choice(rng, _ANSWER_CLOSES)[lang]
    return slots.fill(_paragraphs(intro, listed, code, close))


__all__ = ["ANCHOR", "SITE_LABEL", "SyntheticSource"]
