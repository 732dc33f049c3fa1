"""Triage on arrival: what a thread is, how its author feels, who the author is, and how soon it
needs an answer (../shared/DESIGN.md section 5, flow 2).

Everything here is transparent on purpose: agents see why a thread got its priority
(`TriageResult.reasons`), brands read and edit the priority rules (`ServicePolicy.triage_rules`,
JSON, first match wins), and staff corrections are kept and measured (`TriageResult.original`).

**Classification** (`Classifier`, default `RulesClassifier`, name "rules-lexicon-v1"):

- *Interaction type*: weighted keyword and phrase cues per type in English and Spanish
  (`_CUE_TABLE` below; accent- and case-insensitive; "stem*" matches a word prefix; a cue inside
  a longer one found in the same post does not count), plus the kind the asker picked as a
  prior (weak for "question", the form's default), a bonus for question marks, and the
  sentiment: a negative post is never praise and a positive one never a complaint, and praise
  asks for nothing (a post that also asks, reports or proposes is that). The highest score
  wins; with no evidence at all the asker's kind (or "question") stands.
- *Sentiment*: VADER (Hutto & Gilbert 2014) for English with support-domain additions
  (`lexicons/en_extra.txt`: "help", "please" and "refund" carry no feeling, "outage" and
  "laggy" do, "error" and "problem" are milder than in tweets); for Spanish VADER's algorithm
  runs on our own lexicon (`lexicons/es_vader.txt`, VADER's tab format, accent-free words)
  after Spanish negators and degree words are mapped to the ones VADER knows ("no" -> "not",
  "nunca" -> "never", "muy" -> "very", "pero" -> "but"). Before scoring, politeness formulas
  ("thanks in advance", "gracias de antemano"), product names ("smart plug", "guia rapida")
  and wishes in the conditional ("it would be great if", "seria genial que") are removed:
  manners, names and imagined products are not feelings; a few idioms ("thanks for nothing",
  "hasta las narices") are read as one word. The language is the thread's locale unless the
  text is clearly in the other language. Each sentence is scored and the compound is the
  normalised sum, so one furious sentence is not averaged away by polite ones.
  Thresholds: compound >= POSITIVE_AT (0.35) is positive, <= NEGATIVE_AT (-0.3) negative.
  A complaint with no clear lexicon signal is negative, praise positive (the type says so).

Measured on `data/triage_eval.jsonl` by tests/crowdservice/test_triage.py (accuracy per field
and language is printed); posts the classifier had never been tuned on scored lower than the
whole set (about 0.8 for the type), so treat the printed numbers as an upper bound.

**Segments** (`segment_for`), first match wins: troll (>= TROLL_UPHELD_FLAGS upheld flags
against their posts in the last year), detractor (>= DETRACTOR_NEGATIVE of their last
DETRACTOR_WINDOW triaged threads negative), influencer (reputation >= INFLUENCER_REPUTATION),
advocate (>= ADVOCATE_ACCEPTED accepted answers on other people's threads and no more negative
than positive threads), active contributor (>= ACTIVE_ANSWERS visible answers or trust level
>= ACTIVE_TRUST_LEVEL), customer (verified by the brand), new (everyone else).

**Priority** (`priority_for`): the first rule of `DEFAULT_RULES` (or the brand's own) whose
conditions all hold; "no_response" rules give P4 with `needs_response` false, which keeps praise
and troll noise out of the agents' queues.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload
from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
    SentimentIntensityAnalyzer,
)

from community.clock import utcnow
from community.errors import FormErrors, PermissionDenied
from community.i18n import gettext as _
from community.models import Forum, Post, Thread, User, Visibility
from community.policy import is_staff
from crowdservice.models import (
    InteractionType,
    Priority,
    Segment,
    Sentiment,
    ServicePolicy,
    TriageResult,
)
from moderation.audit import record_audit
from moderation.models import Flag, FlagStatus

LEXICON_DIR = Path(__file__).parent / "lexicons"

# Sentiment thresholds on VADER's compound score (-1..1). VADER's own +-0.05 suits tweets; a
# support post carries mild words ("issue", "please") that must not tip it.
POSITIVE_AT = 0.35
NEGATIVE_AT = -0.3
# Posts are cut here before classifying: the opening says what the post is about, and it
# keeps a pasted log from costing milliseconds.
MAX_TEXT = 4000

# Segment thresholds (documented in the module docstring).
TROLL_UPHELD_FLAGS = 3
TROLL_WINDOW = timedelta(days=365)
DETRACTOR_WINDOW = 10
DETRACTOR_NEGATIVE = 3
INFLUENCER_REPUTATION = 2000
ADVOCATE_ACCEPTED = 5
ACTIVE_ANSWERS = 10
ACTIVE_TRUST_LEVEL = 2

MAX_RULES = 50
MAX_WORDS_PER_RULE = 200
MAX_WORD_LENGTH = 60
MAX_NAME_LENGTH = 60
BATCH_SIZE = 500

# --- the interface ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    interaction_type: InteractionType
    sentiment: Sentiment
    sentiment_score: float  # compound, -1..1
    reasons: dict[str, Any] = field(default_factory=dict)


class Classifier(Protocol):
    """What a brand plugs in to replace the default: fast, no I/O, deterministic."""

    name: str

    def classify(
        self, title: str, body: str, *, locale: str, kind_hint: str | None
    ) -> Classification: ...


# --- words -----------------------------------------------------------------------------------

_ACCENTED = "áéíóúüñàèìòùâêîôûäëïöçÁÉÍÓÚÜÑÀÈÌÒÙÂÊÎÔÛÄËÏÖÇ"
_FOLD = str.maketrans(_ACCENTED, "aeiouunaeiouaeiouaeiocAEIOUUNAEIOUAEIOUAEIOC")
_APOSTROPHES = re.compile(r"['’`´]")
_WORD = re.compile(r"[a-z0-9]+")


def fold(text: str, *, lower: bool = True) -> str:
    """Without accents (and lower case): "Está caído" -> "esta caido"."""
    folded = text.translate(_FOLD)
    return folded.lower() if lower else folded


def padded_words(text: str) -> str:
    """Folded words separated by single spaces, with a space at each end, so that a phrase
    is found with `" phrase " in padded` and a word prefix with `" stem" in padded`."""
    words = _WORD.findall(_APOSTROPHES.sub("", fold(text)))
    return f" {' '.join(words)} "


@dataclass(frozen=True, slots=True)
class Cue:
    type: InteractionType
    weight: float
    text: str
    needle: str
    group: str = ""


# Phrases that say what a post is, by type and weight (English and Spanish, written without
# accents and apostrophes: "doesnt" matches "doesn't"). For incorrect information a *source*
# ("the article", "la web") and a *wrongness* word ("outdated", "incorrecto") together add
# INCORRECT_INFO_PAIR: either alone says little ("the manual" shows up in problem reports).
_Q, _P, _C = InteractionType.QUESTION, InteractionType.PROBLEM, InteractionType.COMPLAINT
_S, _PR, _I = InteractionType.SUGGESTION, InteractionType.PRAISE, InteractionType.INCORRECT_INFO
INCORRECT_INFO_PAIR = 1.5
_CUE_TABLE: dict[tuple[InteractionType, float, str], str] = {
    (_Q, 2.0, ""): """how do i|how can i|how to|how do you|how does|how do we|how would i|
        how long does|how long will|how long until|how much does|how much is|is it possible|
        is there a way|is there any way|any way to|does anyone know|anyone know|do you know|
        can anyone tell|can someone explain|whats the difference|what is the difference|
        difference between|where can i|where do i|where do you|is it safe|will it work|
        will they work|is it compatible|are they compatible|quick question|question about|
        i was wondering|
        como puedo|como se|como hago|como activo|como cambio|como configuro|como paso|
        como comparto|como funciona|se puede|es posible|hay alguna forma|hay alguna manera|
        hay forma|hay manera|alguien sabe|sabeis si|saben si|sabe alguien|que diferencia|
        diferencia entre|donde puedo|donde encuentro|donde se|donde cambio|cuanto tarda|
        cuanto cuesta|cuantos dias|cuanto tiempo|quisiera saber|me gustaria saber|
        necesito saber|tengo una duda|una duda|una pregunta|una consulta""",
    (_Q, 1.0, ""): """which|what is|whats|where is|where are|when will|should i|can i|could i|
        do i need|do i have to|does the|does it|is the|is my|will my|compatible with|
        work with|recommend|recommended|wondering|included|
        cual|cuales|que es|cuando|deberia|puedo usar|tengo que|hay que|es compatible|
        son compatibles|compatible con|funciona con|recomendais|recomiendan|duda|pregunta|
        consulta|esta incluido|incluye|necesito""",
    (_P, 2.0, ""): """not working|doesnt work|does not work|dont work|isnt working|
        is not working|stopped working|stops working|no longer works|no longer working|
        wont turn on|wont start|wont connect|wont charge|wont pair|wont load|wont update|
        cant connect|cannot connect|unable to connect|cant log in|cant login|cannot log in|
        unable to log in|cant sign in|keeps crashing|keeps disconnecting|keeps dropping|
        keeps restarting|keeps rebooting|keeps buffering|keeps freezing|logs me out|
        crashes|crashing|crashed|freezes|freezing|frozen|disconnects|disconnecting|drops out|
        no signal|no service|no internet|no connection|no sound|no audio|black screen|
        blank screen|boot loop|error code|error message|fails with|failed with|
        not charging|not responding|unresponsive|unreachable|offline|cuts off|calls drop|
        dropped calls|goes down|went down|
        no funciona|no me funciona|no funcionan|ha dejado de funcionar|dejo de funcionar|
        deja de funcionar|no va|no carga|no conecta|no se conecta|no me deja|no enciende|
        no arranca|no responde|no responden|no recibo|no me llega|no llegan|no suena|
        se cuelga|se bloquea|se reinicia|se apaga|se desconecta|se corta|se cortan|se cierra|
        se queda colgado|se queda sin conexion|sin senal|sin cobertura|sin conexion|
        me echa|me saca|me expulsa|kicks me out|keeps happening|
        declined|gets declined|was declined|rejected|wont accept|doesnt accept|not accepted|
        rechazad*|denegad*|no acepta|no me acepta|never arrives|never arrived|never comes|
        cant use|cannot use|unable to use|nunca llega|nunca me llega|sin poder|no puedo usar|
        sin internet|pantalla negra|pantalla en negro|me da error|da error|me sale un error|
        me sale error|me sale el error|no empareja|no se empareja|no sincroniza|
        no se sincroniza""",
    (_P, 1.0, ""): """error|errors|bug|buggy|glitch|glitchy|broken|issue|issues|problem|
        problems|fails|failed|failing|failure|stuck|slow|lag|laggy|buffering|buffers|
        overheat*|battery drain*|drains|outage|reboot*|restart*|reset|after the update|
        since the update|after updating|since updating|firmware|troubleshoot*|i have tried|
        ive tried|already tried|tried everything|reinstalled|factory reset|still happens|
        intermittent*|randomly|hacked|locked out|invalid|drops|dropping|disconnect*|
        happens|happening|ocurre|sucede|not available|unavailable|no disponible|
        whats going on|what is going on|whats wrong|what is wrong|que pasa|que ocurre|
        fallo|falla|fallos|errores|error|problema|problemas|averia|roto|rota|estropead*|
        lento|lenta|bloquead*|caido|caida|cortes|intermitente|despues de la actualizacion|
        desde la actualizacion|tras la actualizacion|he probado|ya he probado|he reiniciado|
        reinici*|restablec*|reinstal*|sigue igual|me pasa|le pasa|les pasa|hackead*|
        no puedo|no consigo|luz roja|parpadea|apagon|corte de luz""",
    (_P, 0.5, ""): """help|fix|urgent|urgently|any fix|solution|ayuda|urgente|solucion|
        arreglar|solucionar""",
    (_C, 2.0, ""): """unacceptable|ridiculous|outrageous|disgrace*|shameful|shame on|pathetic|
        appalling|terrible service|terrible customer service|awful service|worst service|
        worst customer service|worst company|poor service|poor customer service|
        customer service|false advertising|rip off|ripoff|scam|scammed|misled|lied to|
        you lied|fed up|sick of|tired of|had enough|want my money back|want a refund|
        demand|i expect|compensation|want to cancel|cancel my contract|cancelling|canceling|
        switching to|switch provider|leaving for|considering switching|thinking of leaving|
        never again|how is this acceptable|treat your customers|treat customers|
        treat a customer|loyal customer|long time customer|years as a customer|
        still waiting|nobody has|no one has|nobody will|nobody called|no one called|
        no response|no reply|hung up|on hold|fourth time|again and again|
        complaint|complain|rude|incompetent|useless|a joke|charged twice|double charged|
        overcharged|price increase|raised my|raising the price|hidden fees|stop charging|
        without telling me|without my consent|no show|didnt turn up|did not turn up|
        nobody turned up|nobody came|not the way to|
        inaceptable|intolerable|inadmisible|indignante|vergonzos*|verguenza|lamentable|
        penoso|patetico|pesimo|pesima|el peor|la peor|atencion al cliente|
        servicio al cliente|servicio de atencion|publicidad enganosa|estafa|estafadores|
        timo|me enganaron|enganad*|enganaron|me mintieron|mentira|estoy harto|estoy harta|
        harto|harta|cansado de|cansada de|ya basta|basta ya|exijo|compensacion|
        indemnizacion|quiero cancelar|darme de baja|me doy de baja|dar de baja|
        me voy a otra|irme a otra|cambiarme de compania|me cambio de compania|nunca mas|
        asi tratais|asi tratan|tratais a|cliente de|anos de cliente|anos con vosotros|
        sigo esperando|sigo sin|llevo semanas|llevo meses|llevo un mes|nadie me|nadie ha|
        nadie responde|nadie contesta|no vino|no aparecio nadie|sin respuesta|me cuelga|
        me cuelgan|me colgaron|cuarta vez|una y otra vez|queja|reclamacion|
        hoja de reclamaciones|reclamar|maleducad*|groser*|inutiles|incompetentes|una broma|
        tomadura de pelo|cobrado dos veces|cobro duplicado|me habeis cobrado|me han cobrado|
        subida de precio|me habeis subido|me han subido|dejad de cobrarme|sin avisar|
        sin mi consentimiento|abuso|abusivo|poca seriedad|falta de respeto|ya esta bien|
        you blame|long wait|ticket was closed|closed my ticket|closed as resolved|
        closed without|la culpa|me culpan|larga espera|cerrado la incidencia|
        cerrar la incidencia|cierran mis incidencias|cerraron la incidencia|
        on your side|your end|por vuestra parte|vuestra culpa|im done|i am done|
        done being patient|this cant go on|asi no se puede|nobody answers|no one answers|
        nobody picks up|no one picks up|nadie coge|nadie lo coge|nadie atiende|
        thanks for nothing|for the privilege|some of us work|yet again|yet another|ni caso|
        hasta las narices|hasta el gorro|estoy hasta|
        new customers get|nuevos clientes|los nuevos|slap in the face|been with you|
        anos con vosotros|llevo anos""",
    (_C, 1.0, ""): """refund|refunded|charged|charge|charges|billed|billing|invoice|fee|fees|
        contract|price|weeks|months|waiting|waited|cancel|manager|supervisor|escalate|
        blame|blaming|i paid|we paid|paying for|i pay for|without an answer|without anyone|
        without contacting|without a reply|for no reason|no explanation|third time|
        the store|in store|agent|agents|technician|nobody|no one|promised|
        reembolso|devolucion|devuelto el dinero|cobro|cobrado|cobrar|cobrarme|cobran|factura|
        facturacion|permanencia|contrato|precio|cuota|semanas|meses|esperando|cancelar|baja|
        agente|agentes|tecnico|la tienda|en la tienda|operadora|compania|nadie|prometieron|
        he pagado|pague|estoy pagando|pagando por|sin resolver|sin llamarme|sin contactarme|
        i have called|ive called|i called|called four times|called three times|called five times|
        he llamado|why do i have to|every single month|chase|chasing|whats the point|
        what is the point|para que sirve|new customers|existing customers|
        sin avisarme|sin explicacion|sin motivo|tercera vez""",
    # Feelings alone say "negative", not "complaint": a frustrated problem is still a problem.
    (_C, 0.5, ""): """again|disappointed|disappointing|annoyed|angry|furious|frustrated|
        frustrating|decepcionad*|decepcion|enfadad*|indignad*|cabread*|frustrad*|otra vez|
        de nuevo""",
    (_S, 2.0, ""): """feature request|it would be great|would be great|would be nice|
        would be helpful|would be useful|would be fantastic|would be awesome|would help|
        would save|would make|would love|id love|would like to see|id like to see|
        please add|could you add|can you add|consider adding|please consider|i suggest|
        suggestion|my suggestion|i propose|proposal|an idea|idea|i wish|wish there was|
        why not add|add an option|add a way|add support for|allow us|allow users|let us|
        should be able|should have an option|should offer|should allow|dark mode|
        itd be|it would|
        seria genial|seria muy util|seria util|seria bueno|seria buena idea|
        seria interesante|seria estupendo|estaria bien|estaria genial|me gustaria que|
        nos gustaria que|me encantaria que|podriais anadir|podrian anadir|podriais incluir|
        podrian incluir|podriais poner|sugerencia|sugiero|propongo|propuesta|idea|ojala|
        deberiais|deberian|que permita|que se pueda|se pudiera|modo oscuro|echo en falta|
        se echa en falta|echamos en falta|vendria bien|ahorraria|estaria genial|
        could you offer|can you offer|could you provide|could you allow|could you make|
        would you consider|youd consider|id rather|would rather|next step|future update|
        future release|next version|preferiria|me vendria mejor|podeis valorar|
        podriais ofrecer|podriais permitir|proxima version|proxima actualizacion""",
    (_S, 1.0, ""): """option to|ability to|option for|allow|should have|should add|improve*|
        add|adding|wish|why not|support for|widget|schedule option|maybe offer|
        maybe add|maybe allow|perhaps offer|perhaps add|how about|what about adding|
        instead of|option|call back option|en vez de|en lugar de|would be|consider|
        offer|
        mejora|mejorar|poder|opcion|anadir|agregar|incluir|permitir|deberia|programar""",
    (_PR, 2.0, ""): """thank you so much|thanks so much|many thanks|huge thanks|big thanks|
        thank you for|thanks for the|thanks to|kudos|shout out|shoutout|hats off|well done|
        great job|good job|great work|excellent work|amazing job|keep it up|
        keep up the good work|above and beyond|impressed|love it|love the|i love|loving|
        fantastic|amazing|awesome|excellent|outstanding|superb|brilliant|flawless|
        worked perfectly|works perfectly|great service|great experience|great support|
        best purchase|happy customer|very happy|so happy|really happy|very pleased|
        delighted|highly recommend|grateful|appreciated|lifesaver|saved me|going strong|
        mil gracias|muchas gracias|muchisimas gracias|gracias a|gracias por|enhorabuena|
        felicidades|felicitar|felicito|buen trabajo|gran trabajo|excelente|estupend*|
        fantastic*|genial|maravilla|maravillos*|perfecto|perfecta|impecable|de diez|
        un diez|de 10|chapeau|bravo|me encanta|me encantan|encantad*|muy contento|
        muy contenta|satisfech*|lo recomiendo|agradecer|agradezco|agradecid*|seguid asi|
        sigan asi|da gusto|una pasada|me salvo|me has salvado|good experience|
        buena experiencia|gran experiencia|experiencia de diez|really good|
        very good|so good|nice one|works great|worked great|top notch|legend|legends|
        muy bueno|muy buena|buenisimo|buenisima|de lujo|un lujo|fenomenal|cambio enorme""",
    (_PR, 1.0, ""): """thanks|thank you|great|love|happy|helpful|perfect|perfectly|
        recommend|appreciate|smooth|best|
        gracias|contento|contenta|rapidez|util|utiles|perfectamente|mejor|increible""",
    (_I, 2.0, ""): """misinformation|wrong information|wrong info|wrong instructions|
        which is correct|which one is correct|which is right|which one is right|
        which is accurate|which one is accurate|correction|my earlier answer|
        my previous answer|que es lo correcto|cual es lo correcto|correccion|
        mi respuesta anterior|
        which one is it|cual es el correcto|cual es la correcta|cual es el dato correcto|
        cual es correcto|cual es la buena|
        incorrect information|inaccurate|outdated|out of date|no longer correct|
        no longer valid|is not true|isnt true|not true|hoax|typo|
        informacion erronea|informacion incorrecta|dato falso|datos falsos|bulo|
        no es cierto|no es verdad|desactualizad*|obsolet*|errata|
        instrucciones erroneas|informacion falsa""",
    (_I, 0.75, "wrong"): """incorrect|wrong|false|is wrong|are wrong|should say|should read|
        doesnt match|does not match|dont match|not match|correct the|please correct|
        correct it|correct this|correct the map|needs updating|should be updated|
        update the|be updated|misleading|actually|in fact|spreading|clarify|
        incorrect*|erroneo|erronea|erroneos|erroneas|falso|falsa|no coincide|no coinciden|
        corregir|corregid|corregidlo|corrijan|corregirla|actualizar|en realidad|confunde|
        aclarar|no incluye|esta mal|estan mal|risky|dangerous advice|bad advice|
        remove that|remove this|suggests|recommends|mal consejo|quitar ese|quitad|recomienda|
        sugiere|still says|still shows|still lists|still mentions|fix the page|
        fix the article|confuse|confusing|sigue diciendo|sigue mostrando|sigue poniendo|
        todavia pone|todavia dice|todavia aparece|shows the old|the old interface|
        the old menu|old screenshots|antigua|antiguo|antiguas|antiguos|de antes""",
    (_I, 0.75, "source"): """article|articles|kb|help page|help center|help centre|faq|
        faqs|manual|guide|quick start|documentation|docs|the website|website|the site|
        the page|plans page|coverage map|the map|store locator|compatibility list|
        the list|listed|lists|says|states|claims|the claim|official page|pinned post|
        accepted answer|answer above|post above|this thread|rumour|rumor|the ad|the ads|
        articulo|la web|en la web|segun la web|web oficial|pagina|centro de ayuda|
        preguntas frecuentes|faq|manual|guia|documentacion|mapa de cobertura|mapa|dice|
        pone|indica|aparece|sale|lista|respuesta aceptada|mensaje fijado|este hilo|
        traduccion|la pantalla|screenshots|screenshot|video|capturas|captura|
        my answer|mi respuesta""",
}


def _cues() -> tuple[Cue, ...]:
    cues: dict[tuple[InteractionType, str], Cue] = {}
    for (kind, weight, group), phrases in _CUE_TABLE.items():
        for phrase in phrases.split("|"):
            text = " ".join(phrase.split())
            if not text:
                continue
            prefix = text.endswith("*")
            needle = padded_words(text.rstrip("*"))
            cue = Cue(kind, weight, text, needle.rstrip() if prefix else needle, group)
            # A phrase listed twice for a type counts once, with its higher weight.
            known = cues.get((kind, cue.needle))
            if known is None or known.weight < weight:
                cues[(kind, cue.needle)] = cue
    return tuple(cues.values())


TYPE_CUES = _cues()


def _index(cues: Iterable[Cue]) -> tuple[dict[str, tuple[Cue, ...]], tuple[Cue, ...]]:
    """Cues by their first whole word, so a post is only checked for cues that can occur in
    it; one-word prefixes ("overheat*") are checked one by one."""
    by_word: dict[str, list[Cue]] = defaultdict(list)
    prefixes: list[Cue] = []
    for cue in cues:
        words = cue.needle.split()
        if len(words) == 1 and not cue.needle.endswith(" "):
            prefixes.append(cue)
        else:
            by_word[words[0]].append(cue)
    return {word: tuple(found) for word, found in by_word.items()}, tuple(prefixes)


_CUES_BY_WORD, _PREFIX_CUES = _index(TYPE_CUES)


def find_cues(padded: str) -> list[Cue]:
    """The type cues in a padded text (see `padded_words`)."""
    found = [cue for cue in _PREFIX_CUES if cue.needle in padded]
    for word in set(padded.split()):
        for cue in _CUES_BY_WORD.get(word, ()):
            if cue.needle in padded:
                found.append(cue)
    return found


# The kind the asker picked, as a prior: (type, weight). "question" is the ask form's default,
# so many problems and complaints arrive with it: it counts least.
KIND_PRIOR: dict[str, tuple[InteractionType, float]] = {
    "question": (InteractionType.QUESTION, 1.0),
    "problem": (InteractionType.PROBLEM, 1.5),
    "complaint": (InteractionType.COMPLAINT, 1.5),
    "idea": (InteractionType.SUGGESTION, 2.0),
    "praise": (InteractionType.PRAISE, 2.0),
}

# Spanish words that VADER's English rules know as negators, degree words and "but".
ES_NEGATORS = {
    "no": "not", "nunca": "never", "jamas": "never", "ni": "nor", "sin": "without",
    "tampoco": "neither", "nada": "nothing", "nadie": "none", "ningun": "none",
    "ninguno": "none", "ninguna": "none",
}  # fmt: skip
ES_BOOSTERS = {
    "muy": "very", "super": "very", "mucho": "very", "muchisimo": "extremely",
    "totalmente": "totally", "completamente": "completely", "absolutamente": "absolutely",
    "realmente": "really", "verdaderamente": "really", "bastante": "quite", "tan": "so",
    "extremadamente": "extremely", "sumamente": "extremely", "demasiado": "extremely",
    "increiblemente": "incredibly", "especialmente": "especially",
    "enormemente": "enormously", "profundamente": "deeply", "tremendamente": "tremendously",
    "altamente": "highly", "poco": "little", "apenas": "barely", "casi": "almost",
    "ligeramente": "slightly", "pero": "but",
}  # fmt: skip

# Manners, not feelings: removed before the sentiment is read.
POLITENESS_EN = [
    re.compile(
        r"\b(many thanks|thanks|thank you|thx|tia)( so much)? (in advance|for any (help|advice|"
        r"ideas|tips|suggestions|replies|answers)|for reading|for looking)\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bany (help|advice|ideas|suggestions|pointers|tips)( at all)? (would be|is|are|"
        r"will be)( much| greatly| really| very)? (appreciated|welcome)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\b(i('d| would) )?appreciate any (help|advice|tips|ideas)\b", re.IGNORECASE),
    re.compile(r"\bplease (help|advise)\b", re.IGNORECASE),
    re.compile(r"\b(sorry|apologies) for (the|any) (confusion|inconvenience)\b", re.IGNORECASE),
]
POLITENESS_ES = [
    re.compile(
        r"\b(muchas |mil )?gracias (de antemano|por adelantado|por anticipado|"
        r"por cualquier ayuda|por leer(me)?)\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bagradeceria (cualquier |mucho |vuestra |su |tu )?(ayuda|respuesta|consejo)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\bcualquier ayuda (es|sera) bienvenida\b", re.IGNORECASE),
    re.compile(r"\b(perdon|disculpad|disculpen|siento) (por )?la confusion\b", re.IGNORECASE),
]
# Idioms whose words alone mislead VADER ("thanks for nothing" is not thanks, "fed up" has no
# lexicon word): each is read as one token with this valence.
IDIOMS_EN = {
    "thanks for nothing": -2.2, "oh great": -1.0, "fed up": -2.2, "sick of": -2.0,
    "sick and tired": -2.4, "had enough": -1.8, "last straw": -2.2, "slap in the face": -2.2,
    "no help at all": -1.8, "waste of time": -2.0, "waste of money": -2.2,
    "worked like a charm": 2.5, "works like a charm": 2.5, "spot on": 2.0,
    "over the moon": 3.0, "above and beyond": 2.6, "hats off": 2.4, "peace of mind": 1.8,
}  # fmt: skip
IDIOMS_ES = {
    "tomadura de pelo": -2.5, "me volvi loco": -1.8, "me vuelvo loco": -1.8,
    "hasta las narices": -2.6, "hasta el gorro": -2.6, "hasta el mono": -2.6,
    "ni caso": -1.8, "asi no se puede": -2.0, "que poca seriedad": -2.2, "de risa": -1.5,
    "de diez": 2.5, "un diez": 2.5, "de lujo": 2.5, "se agradece": 2.0, "da gusto": 2.2,
    "vale la pena": 1.6, "merece la pena": 1.6, "sin problemas": 1.0,
}  # fmt: skip
# A lone "Thanks!" closing a question is a sign-off.
_SIGN_OFF = re.compile(
    r"(^|[.!?\n])\s*(many thanks|thanks|thank you|thx|cheers|muchas gracias|gracias|"
    r"un saludo|saludos)\s*[.!]*\s*$",
    re.IGNORECASE,
)


# --- sentiment -------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CODE_BLOCK = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_URL = re.compile(r"https?://\S+|www\.\S+")
_SPANISH_PUNCTUATION = str.maketrans({"¿": " ", "¡": " "})
# "looks like", "would like to": the verb, not the feeling.
_EN_LIKE = re.compile(
    r"\b(looks?|seems?|sounds?|feels?|would|'d|something|just|more|anything|exactly)\s+like\b",
    re.IGNORECASE,
)
# Product and status names that carry no feeling ("smart plug", "quick start", "in progress",
# "guia rapida", "mapa de averias"): removed before the sentiment is read.
_NEUTRAL_TERMS_EN = re.compile(
    r"\b(smart ?(home|plugs?|bulbs?|speakers?|phones?|tv|watch|hub|thermostat|lock)|"
    r"quick ?(start|settings|guide)|fast charg\w*|in progress|best (way|option|settings?|"
    r"practice|channel|plan|choice|approach)|(do|would|can|could) you recommend|outage map|"
    r"status page|free of charge|customer care|customer support|support team|third[ -]party|"
    r"play store|google play|app store|loyalty (programme|program|scheme|points|discount|card)|"
    r"rewards? (programme|program|scheme|points))\b",
    re.IGNORECASE,
)
_NEUTRAL_TERMS_ES = re.compile(
    r"\b(guia rapida|inicio rapido|carga rapida|mapa de averias|en curso|atencion al cliente|"
    r"servicio tecnico|que me recomendais|me recomendais|la mejor (forma|manera|opcion))\b",
    re.IGNORECASE,
)
# A wish in the conditional ("it would be great if...", "seria genial que...") describes an
# imagined product, not how the author feels: that clause is left out of the sentiment
# (except a recommendation, which is a verdict).
_CONDITIONAL_EN = re.compile(
    r"\b(would|could|it'd|itd|i'd|id love)\b(?![^.!?;\n]*\brecommend)[^.!?;\n]*",
    re.IGNORECASE,
)
_CONDITIONAL_ES = re.compile(
    r"\b(seria|serian|estaria|estarian|vendria|ahorraria|me gustaria|nos gustaria|"
    r"me encantaria|ojala|podriais|podrian|se pudiera)\b[^.!?;\n]*",
    re.IGNORECASE,
)


def load_lexicon(path: Path) -> dict[str, float]:
    """A VADER-format lexicon: word, mean valence, standard deviation, raw ratings (tabs)."""
    lexicon: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        word, measure = line.split("\t")[:2]
        lexicon[word.strip()] = float(measure)
    return lexicon


class _Vader:
    """One VADER analyser (English, or Spanish with our lexicon), typed at the edge."""

    def __init__(self, language: str) -> None:
        self.language = language
        analyzer: Any = SentimentIntensityAnalyzer()
        if language == "es":
            english: dict[str, float] = analyzer.lexicon
            lexicon = load_lexicon(LEXICON_DIR / "es_vader.txt")
            # Emoticons read the same in every language; VADER turns emoji into English
            # descriptions, so the words of those descriptions come along too.
            for word, valence in english.items():
                if not any(char.isalpha() for char in word) or word in _EMOJI_WORDS:
                    lexicon.setdefault(word, valence)
            analyzer.lexicon = lexicon
            self.name = "vader-es-v1"
            idioms = IDIOMS_ES
        else:
            analyzer.lexicon.update(load_lexicon(LEXICON_DIR / "en_extra.txt"))
            self.name = "vader-en+extra-v1"
            idioms = IDIOMS_EN
        self._analyzer = analyzer
        self.lexicon: dict[str, float] = analyzer.lexicon
        # Each idiom becomes one made-up word ("idiom3") that the lexicon knows.
        self._idiom_tokens = {phrase: f"idiom{n}" for n, phrase in enumerate(idioms)}
        for phrase, token in self._idiom_tokens.items():
            self.lexicon[token] = idioms[phrase]
        self._idiom_pattern = re.compile(
            r"\b(" + "|".join(sorted(idioms, key=len, reverse=True)) + r")\b", re.IGNORECASE
        )

    def _idioms(self, text: str) -> str:
        return self._idiom_pattern.sub(
            lambda match: self._idiom_tokens[match.group(0).lower()], text
        )

    def prepare(self, text: str) -> str:
        if "?" in text:
            text = _SIGN_OFF.sub(r"\1", text.rstrip())
        if self.language == "es":
            text = fold(text, lower=False).translate(_SPANISH_PUNCTUATION)
            for pattern in (*POLITENESS_ES, _NEUTRAL_TERMS_ES, _CONDITIONAL_ES):
                text = pattern.sub(" ", text)
            return _map_spanish_modifiers(self._idioms(text))
        for pattern in (*POLITENESS_EN, _NEUTRAL_TERMS_EN, _CONDITIONAL_EN):
            text = pattern.sub(" ", text)
        return self._idioms(_EN_LIKE.sub(r"\1", text))

    def score(self, text: str) -> tuple[float, list[str]]:
        """Compound score of the prepared text and the lexicon words that carried it."""
        prepared = self.prepare(text)
        total = 0.0
        for sentence in _SENTENCE_END.split(prepared):
            if not sentence.strip():
                continue
            compound = float(self._analyzer.polarity_scores(sentence)["compound"])
            if compound:
                # Back from VADER's normalised compound to its summed valence, so sentences
                # add up: normalize(x) = x / sqrt(x^2 + 15).
                bounded = max(min(compound, 0.9999), -0.9999)
                total += bounded * math.sqrt(15 / (1 - bounded * bounded))
        compound = total / math.sqrt(total * total + 15) if total else 0.0
        words: list[str] = []
        for token in prepared.lower().split():
            token = token.strip(".,;:!?()\"'[]")
            if token in self.lexicon and len(words) < 12:
                words.append(f"{token} {self.lexicon[token]:+.1f}")
        return round(compound, 4), words


_EMOJI_WORDS = frozenset(
    [
        "smiling",
        "grinning",
        "laughing",
        "joy",
        "tears",
        "heart",
        "hearts",
        "love",
        "kiss",
        "crying",
        "angry",
        "pouting",
        "rage",
        "thumbs",
        "clapping",
        "party",
        "fire",
        "broken",
        "sad",
        "disappointed",
        "worried",
        "confused",
        "weary",
        "tired",
        "frowning",
        "screaming",
        "fearful",
        "pensive",
        "sweat",
        "star",
        "struck",
        "hugging",
        "ok",
    ]
)

_SPANISH_MODIFIER = re.compile(
    r"\b(" + "|".join(sorted({**ES_NEGATORS, **ES_BOOSTERS}, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def _map_spanish_modifiers(text: str) -> str:
    """Spanish negators and degree words become the English ones VADER's rules know; the
    case is kept, since VADER reads words in capitals as emphasis."""

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        lowered = word.lower()
        english = ES_NEGATORS.get(lowered) or ES_BOOSTERS[lowered]
        return english.upper() if word.isupper() and len(word) > 1 else english

    return _SPANISH_MODIFIER.sub(replace, text)


@cache
def _vader(language: str) -> _Vader:
    return _Vader(language)


_ES_MARKERS = frozenset(
    [
        "el",
        "la",
        "los",
        "las",
        "del",
        "que",
        "por",
        "para",
        "con",
        "una",
        "pero",
        "como",
        "esta",
        "este",
        "hay",
        "tengo",
        "muy",
        "mas",
        "cuando",
        "desde",
        "hace",
        "porque",
        "tambien",
        "ya",
        "sin",
        "sus",
        "nos",
        "les",
        "algo",
        "todo",
    ]
)
_EN_MARKERS = frozenset(
    [
        "the",
        "and",
        "is",
        "to",
        "of",
        "my",
        "it",
        "for",
        "you",
        "with",
        "on",
        "this",
        "that",
        "have",
        "was",
        "not",
        "but",
        "can",
        "are",
        "do",
        "from",
        "when",
        "since",
        "has",
        "just",
        "what",
        "there",
    ]
)


def detect_language(locale: str, words: Iterable[str]) -> tuple[str, str]:
    """The thread's locale unless the text is clearly in the other language."""
    declared = "es" if locale.lower().startswith("es") else "en"
    spanish = english = 0
    for word in words:
        if word in _ES_MARKERS:
            spanish += 1
        elif word in _EN_MARKERS:
            english += 1
    if declared == "en" and spanish >= 3 and spanish > 3 * english:
        return "es", "detected"
    if declared == "es" and english >= 3 and english > 3 * spanish:
        return "en", "detected"
    return declared, "locale"


# --- the default classifier ------------------------------------------------------------------

_TYPE_ORDER = (
    InteractionType.INCORRECT_INFO,
    InteractionType.COMPLAINT,
    InteractionType.PROBLEM,
    InteractionType.SUGGESTION,
    InteractionType.PRAISE,
    InteractionType.QUESTION,
)


_REQUESTS = (
    InteractionType.QUESTION,
    InteractionType.PROBLEM,
    InteractionType.SUGGESTION,
    InteractionType.INCORRECT_INFO,
)


def _longest(found: Iterable[Cue]) -> list[Cue]:
    """Cues found in the text, less those inside a longer one found ("false" inside "false
    advertising", "harto" inside "estoy harto"): the longer phrase says what is meant."""
    cues = list(found)
    return [
        cue
        for cue in cues
        if not any(
            len(other.needle) > len(cue.needle) and cue.needle in other.needle for other in cues
        )
    ]


def clean_text(text: str) -> str:
    """Markdown source as prose: no code, no links, bounded length."""
    return _URL.sub(" ", _CODE_BLOCK.sub(" ", text[: MAX_TEXT * 2]))[:MAX_TEXT]


class RulesClassifier:
    """Keyword rules per type and lexicon sentiment, English and Spanish."""

    name: str = "rules-lexicon-v1"

    def classify(
        self, title: str, body: str, *, locale: str, kind_hint: str | None
    ) -> Classification:
        text = clean_text(f"{title.strip()}\n{body}")
        padded = padded_words(text)
        language, language_source = detect_language(locale, padded.split())
        vader = _vader(language)
        compound, sentiment_words = vader.score(text)

        scores: dict[InteractionType, float] = dict.fromkeys(InteractionType, 0.0)
        matched: dict[str, list[str]] = defaultdict(list)
        groups: set[str] = set()
        for cue in _longest(find_cues(padded)):
            matched[cue.type.value].append(cue.text)
            if cue.group:
                # A source or a wrongness word counts once however often it comes up.
                if cue.group not in groups:
                    scores[cue.type] += cue.weight
                groups.add(cue.group)
            else:
                scores[cue.type] += cue.weight
        if {"source", "wrong"} <= groups:
            scores[InteractionType.INCORRECT_INFO] += INCORRECT_INFO_PAIR
        prior = KIND_PRIOR.get(kind_hint or "")
        if prior is not None:
            scores[prior[0]] += prior[1]
        questions = text.count("?")
        if questions:
            scores[InteractionType.QUESTION] += 0.75 if questions == 1 else 1.0
        # Praise asks for nothing: a post that also asks, reports or proposes something is
        # that, however warmly it is put.
        if any(scores[kind] >= 2 for kind in _REQUESTS):
            scores[InteractionType.PRAISE] -= 2.0
        # A complaint is negative and praise positive by definition.
        if compound <= NEGATIVE_AT:
            scores[InteractionType.PRAISE] -= 3.0
            if compound <= -0.5:
                scores[InteractionType.COMPLAINT] += 1.0
        elif compound >= POSITIVE_AT:
            scores[InteractionType.COMPLAINT] -= 3.0
            if compound >= 0.5:
                scores[InteractionType.PRAISE] += 1.0

        best = max(_TYPE_ORDER, key=lambda kind: scores[kind])
        rule = "highest score"
        if scores[best] <= 0:
            best = prior[0] if prior is not None else InteractionType.QUESTION
            rule = "no evidence: the asker's kind" if prior is not None else "no evidence"

        sentiment = _sentiment_of(compound)
        sentiment_rule = "lexicon"
        if best == InteractionType.COMPLAINT and sentiment != Sentiment.NEGATIVE:
            sentiment, sentiment_rule = Sentiment.NEGATIVE, "a complaint is negative"
        elif best == InteractionType.PRAISE and sentiment != Sentiment.POSITIVE:
            sentiment, sentiment_rule = Sentiment.POSITIVE, "praise is positive"

        reasons: dict[str, Any] = {
            "language": language,
            "language_source": language_source,
            "kind_hint": kind_hint,
            "type_rule": rule,
            "type_scores": {kind.value: round(scores[kind], 2) for kind in _TYPE_ORDER},
            "cues": dict(matched),
            "lexicon": vader.name,
            "lexicon_score": compound,
            "sentiment_words": sentiment_words,
            "sentiment_rule": sentiment_rule,
            "thresholds": {"positive": POSITIVE_AT, "negative": NEGATIVE_AT},
        }
        return Classification(best, sentiment, compound, reasons)


def _sentiment_of(compound: float) -> Sentiment:
    if compound >= POSITIVE_AT:
        return Sentiment.POSITIVE
    if compound <= NEGATIVE_AT:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL


@cache
def default_classifier() -> RulesClassifier:
    return RulesClassifier()


# --- segments --------------------------------------------------------------------------------


@dataclass
class _AuthorStats:
    upheld_flags: int = 0
    accepted_answers: int = 0
    visible_answers: int = 0
    # (thread id, sentiment) of their latest triaged threads, newest first.
    recent: list[tuple[int, str]] = field(default_factory=list)


def _count_by_author(db: Session, query: Select[int | None, int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for author_id, count in db.execute(query).all():
        if author_id is not None:
            counts[int(author_id)] = int(count)
    return counts


def _author_stats(
    db: Session, user_ids: Sequence[int], *, history_excludes: Select[Any] | None = None
) -> dict[int, _AuthorStats]:
    """Everything the segment rules need for many authors in four grouped queries. Threads
    selected by `history_excludes` are left out of the authors' recent history."""
    stats = {user_id: _AuthorStats() for user_id in user_ids}
    if not stats:
        return stats
    ids = list(stats)
    upheld = _count_by_author(
        db,
        select(Post.author_id, func.count(Flag.id))
        .join(Post, Post.id == Flag.post_id)
        .where(
            Post.author_id.in_(ids),
            Flag.status == FlagStatus.UPHELD,
            Flag.resolved_at >= utcnow() - TROLL_WINDOW,
        )
        .group_by(Post.author_id),
    )
    accepted = _count_by_author(
        db,
        select(Post.author_id, func.count(Thread.id))
        .join(Post, Post.id == Thread.accepted_post_id)
        .where(
            Post.author_id.in_(ids),
            # Accepting one's own answer does not make anyone an advocate.
            Thread.author_id.is_distinct_from(Post.author_id),
            Thread.visibility == Visibility.VISIBLE,
            Post.visibility == Visibility.VISIBLE,
        )
        .group_by(Post.author_id),
    )
    answers = _count_by_author(
        db,
        select(Post.author_id, func.count(Post.id))
        .join(Thread, Thread.id == Post.thread_id)
        .where(
            Post.author_id.in_(ids),
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
            Thread.visibility == Visibility.VISIBLE,
        )
        .group_by(Post.author_id),
    )
    for user_id, found in stats.items():
        found.upheld_flags = upheld.get(user_id, 0)
        found.accepted_answers = accepted.get(user_id, 0)
        found.visible_answers = answers.get(user_id, 0)
    ranked = (
        select(
            Thread.author_id,
            Thread.id,
            Thread.sentiment,
            func.row_number()
            .over(
                partition_by=Thread.author_id,
                order_by=(Thread.created_at.desc(), Thread.id.desc()),
            )
            .label("rank"),
        )
        .where(
            Thread.author_id.in_(ids),
            Thread.sentiment.is_not(None),
            *([] if history_excludes is None else [Thread.id.not_in(history_excludes)]),
        )
        .subquery()
    )
    # One more than the window: the thread being triaged is left out of its own history.
    for author_id, thread_id, sentiment, _rank in db.execute(
        select(ranked).where(ranked.c.rank <= DETRACTOR_WINDOW + 1).order_by(ranked.c.rank)
    ):
        stats[int(author_id)].recent.append((int(thread_id), str(sentiment)))
    return stats


def _segment_from(
    user: User, stats: _AuthorStats, exclude_thread_id: int | None
) -> tuple[Segment, dict[str, Any]]:
    recent = [sentiment for thread_id, sentiment in stats.recent if thread_id != exclude_thread_id]
    recent = recent[:DETRACTOR_WINDOW]
    negative = recent.count(Sentiment.NEGATIVE.value)
    positive = recent.count(Sentiment.POSITIVE.value)
    facts: dict[str, Any] = {
        "upheld_flags": stats.upheld_flags,
        "recent_negative": negative,
        "recent_positive": positive,
        "recent_triaged": len(recent),
        "reputation": user.reputation,
        "accepted_answers": stats.accepted_answers,
        "visible_answers": stats.visible_answers,
        "trust_level": user.trust_level,
        "verified_customer": user.verified_customer,
    }
    if stats.upheld_flags >= TROLL_UPHELD_FLAGS:
        segment = Segment.TROLL
        because = f"{stats.upheld_flags} flags upheld against their posts in the last year"
    elif negative >= DETRACTOR_NEGATIVE:
        segment = Segment.DETRACTOR
        because = f"{negative} of their last {len(recent)} triaged threads were negative"
    elif user.reputation >= INFLUENCER_REPUTATION:
        segment = Segment.INFLUENCER
        because = f"reputation {user.reputation} >= {INFLUENCER_REPUTATION}"
    elif stats.accepted_answers >= ADVOCATE_ACCEPTED and negative <= positive:
        segment = Segment.ADVOCATE
        because = f"{stats.accepted_answers} accepted answers and mostly positive"
    elif stats.visible_answers >= ACTIVE_ANSWERS or user.trust_level >= ACTIVE_TRUST_LEVEL:
        segment = Segment.ACTIVE_CONTRIBUTOR
        because = f"{stats.visible_answers} answers, trust level {user.trust_level}"
    elif user.verified_customer:
        segment = Segment.CUSTOMER
        because = "verified customer"
    else:
        segment = Segment.NEW
        because = "no other rule applies"
    return segment, {"segment": segment.value, "because": because, **facts}


def segment_for(
    db: Session, user: User | None, *, exclude_thread_id: int | None = None
) -> tuple[Segment, dict[str, Any]]:
    """The author's segment and the facts behind it (rules in the module docstring).
    `exclude_thread_id` leaves a thread out of the author's sentiment history (the one being
    triaged), so re-triaging a thread does not count it against its own author."""
    if user is None:
        return Segment.NEW, {"segment": Segment.NEW.value, "because": "no author account"}
    stats = _author_stats(db, [user.id])[user.id]
    return _segment_from(user, stats, exclude_thread_id)


# --- priority rules --------------------------------------------------------------------------

_CRITICAL_WORDS = [
    # English
    "outage", "outages", "network down", "service down", "internet down", "is down",
    "are down", "security breach", "security issue", "security problem", "security hole",
    "security flaw", "vulnerability", "data breach", "breach", "data leak",
    "leaked", "hacked", "hacker", "hackers", "account compromised", "compromised",
    "phishing", "fraud", "fraudulent", "stolen", "unauthorized", "unauthorised",
    "billing error", "charged twice", "double charged", "double charge", "charged double",
    "overcharged", "refund not received", "still no refund", "no refund",
    "money taken", "money was taken",
    # Spanish (matched without accents, so "caída" and "caida" both match)
    "caida", "caidas", "caida del servicio", "caida de red", "sin servicio",
    "brecha de seguridad", "fallo de seguridad", "problema de seguridad", "vulnerabilidad",
    "brecha de datos", "filtracion", "filtracion de datos",
    "hackeado", "hackeada", "hackeo", "me han hackeado", "pirateado", "pirateada",
    "suplantacion", "fraude", "robado", "robada", "no autorizado",
    "no autorizada", "cargo no autorizado", "error de facturacion", "error en la factura",
    "cobrado dos veces", "cobrado doble", "cobro duplicado", "cargo duplicado",
    "factura duplicada", "me han cobrado dos veces", "reembolso no recibido",
    "sin reembolso", "sin el reembolso", "no me han devuelto el dinero",
]  # fmt: skip

# The documented defaults, first match wins. Troll noise comes first so that shouting
# "outage" does not buy a troll a P1; the critical words only count in problems, complaints
# and questions ("make the outage map public" is an idea, "thanks for the outage fix" praise).
DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "troll-noise",
        "segments": [Segment.TROLL.value],
        "no_response": True,
    },
    {
        "name": "critical-words",
        "any_words": _CRITICAL_WORDS,
        "types": ["problem", "complaint", "question"],
        "priority": "P1",
    },
    {
        "name": "influential-negative-complaint",
        "types": ["complaint"],
        "sentiments": ["negative"],
        "segments": [Segment.INFLUENCER.value, Segment.ADVOCATE.value],
        "priority": "P1",
    },
    {
        "name": "negative-problem-or-complaint",
        "types": ["problem", "complaint"],
        "sentiments": ["negative"],
        "priority": "P2",
    },
    {"name": "problem-or-question", "types": ["problem", "question"], "priority": "P3"},
    {"name": "incorrect-information", "types": ["incorrect_info"], "priority": "P3"},
    {"name": "suggestion", "types": ["suggestion"], "priority": "P4"},
    {"name": "praise", "types": ["praise"], "no_response": True},
    {"name": "fallback", "priority": "P3"},
]
# When no rule matches (a brand's rules need not end with a catch-all).
FALLBACK_RULE = "default"
FALLBACK_PRIORITY = Priority.P3

_LIST_KEYS = {
    "types": frozenset(item.value for item in InteractionType),
    "sentiments": frozenset(item.value for item in Sentiment),
    "segments": frozenset(item.value for item in Segment),
}
_RULE_KEYS = frozenset(
    {"name", "description", "any_words", "max_score", "priority", "no_response", *_LIST_KEYS}
)


def validate_rules(raw: object) -> list[dict[str, Any]]:
    """Rules as an admin typed them (a JSON string or already parsed) -> clean rules, or
    FormErrors({"rules": ...}) saying what is wrong and where. An empty list means "use the
    defaults"."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            message = _("This is not valid JSON: %(error)s") % {"error": exc}
            raise FormErrors({"rules": message}) from exc
    if not isinstance(raw, list):
        raise FormErrors({"rules": _("The rules must be a JSON list of objects.")})
    if len(raw) > MAX_RULES:
        raise FormErrors({"rules": _("Use at most %(max)d rules.") % {"max": MAX_RULES}})
    cleaned: list[dict[str, Any]] = []
    names: set[str] = set()
    for number, rule in enumerate(raw, start=1):
        problem = _rule_problem(rule, names)
        if problem is not None:
            raise FormErrors({"rules": _("Rule %(number)d: %(problem)s") % {
                "number": number, "problem": problem,
            }})  # fmt: skip
        assert isinstance(rule, dict)
        cleaned.append(_clean_rule(rule))
        names.add(cleaned[-1]["name"])
    return cleaned


def _rule_problem(rule: object, names: set[str]) -> str | None:
    """What is wrong with one rule, or None."""
    if not isinstance(rule, dict):
        return _("each rule must be an object with a name.")
    unknown = sorted(str(key) for key in rule if key not in _RULE_KEYS)
    if unknown:
        return _("unknown key %(keys)s (allowed: %(allowed)s).") % {
            "keys": ", ".join(f'"{key}"' for key in unknown),
            "allowed": ", ".join(sorted(_RULE_KEYS)),
        }
    name = rule.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
        return _("give it a name of 1 to %(max)d characters.") % {"max": MAX_NAME_LENGTH}
    if name.strip() in names:
        return _('the name "%(name)s" is used twice.') % {"name": name.strip()}
    if not isinstance(rule.get("description", ""), str):
        return _('"description" must be text.')
    has_priority = "priority" in rule
    no_response = rule.get("no_response")
    if no_response is not None and not isinstance(no_response, bool):
        return _('"no_response" must be true or false.')
    if has_priority == bool(no_response):
        return _('give either "priority" (P1 to P4) or "no_response": true.')
    if has_priority and rule["priority"] not in {item.value for item in Priority}:
        return _('"priority" must be one of P1, P2, P3, P4.')
    for key, allowed in _LIST_KEYS.items():
        values = rule.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or not values:
            return _('"%(key)s" must be a non-empty list.') % {"key": key}
        wrong = [value for value in values if value not in allowed]
        if wrong:
            return _('"%(key)s" has %(wrong)s; use %(allowed)s.') % {
                "key": key,
                "wrong": ", ".join(json.dumps(value) for value in wrong),
                "allowed": ", ".join(sorted(allowed)),
            }
    words = rule.get("any_words")
    if words is not None:
        if not isinstance(words, list) or not words or len(words) > MAX_WORDS_PER_RULE:
            return _('"any_words" must be a list of 1 to %(max)d words or phrases.') % {
                "max": MAX_WORDS_PER_RULE
            }
        for word in words:
            if not isinstance(word, str) or not padded_words(word.rstrip("*")).strip():
                return _('"any_words" may only hold words or phrases.')
            if len(word) > MAX_WORD_LENGTH:
                return _('"%(word)s..." is longer than %(max)d characters.') % {
                    "word": word[:20],
                    "max": MAX_WORD_LENGTH,
                }
    max_score = rule.get("max_score")
    if max_score is not None and (
        isinstance(max_score, bool)
        or not isinstance(max_score, int | float)
        or not -1 <= max_score <= 1
    ):
        return _('"max_score" must be a number from -1 to 1.')
    return None


def _clean_rule(rule: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {"name": rule["name"].strip()}
    if rule.get("description"):
        cleaned["description"] = rule["description"].strip()
    if rule.get("any_words"):
        cleaned["any_words"] = [" ".join(word.split()) for word in rule["any_words"]]
    for key in _LIST_KEYS:
        if rule.get(key):
            cleaned[key] = list(dict.fromkeys(rule[key]))
    if rule.get("max_score") is not None:
        cleaned["max_score"] = float(rule["max_score"])
    if rule.get("no_response"):
        cleaned["no_response"] = True
    else:
        cleaned["priority"] = rule["priority"]
    return cleaned


@lru_cache(maxsize=512)
def _needles(words: tuple[str, ...]) -> tuple[str, ...]:
    """ " word " for exact words and phrases, " stem" for "stem*" (a word prefix)."""
    needles = []
    for word in words:
        prefix = word.endswith("*")
        folded = padded_words(word.rstrip("*"))
        if folded.strip():
            needles.append(folded.rstrip() if prefix else folded)
    return tuple(needles)


def _rule_matches(
    rule: dict[str, Any],
    classification: Classification,
    segment: Segment,
    padded: str,
) -> bool:
    if "types" in rule and classification.interaction_type.value not in rule["types"]:
        return False
    if "sentiments" in rule and classification.sentiment.value not in rule["sentiments"]:
        return False
    if "segments" in rule and segment.value not in rule["segments"]:
        return False
    max_score = rule.get("max_score")
    if max_score is not None and classification.sentiment_score > float(max_score):
        return False
    words = rule.get("any_words")
    if words:
        return any(needle in padded for needle in _needles(tuple(words)))
    return True


def priority_for(
    classification: Classification,
    segment: Segment,
    rules: Sequence[dict[str, Any]],
    *,
    text: str = "",
) -> tuple[Priority, bool, str]:
    """(priority, needs_response, name of the rule that fired): the first rule whose
    conditions all hold. `text` is what `any_words` is looked for in (title and body)."""
    padded = padded_words(text)
    for rule in rules:
        if _rule_matches(rule, classification, segment, padded):
            if rule.get("no_response"):
                return Priority.P4, False, str(rule["name"])
            return Priority(rule["priority"]), True, str(rule["name"])
    return FALLBACK_PRIORITY, True, FALLBACK_RULE


def _urgency(priority: str | None, needs: bool) -> int:
    """Higher is more urgent: P1 4 ... P4 1, no response needed 0."""
    if not needs:
        return 0
    return {"P1": 4, "P2": 3, "P3": 2, "P4": 1}.get(priority or "", 2)


def _rules_for_brand(db: Session, brand_id: int) -> tuple[list[dict[str, Any]], str]:
    policy = db.get(ServicePolicy, brand_id)
    if policy is not None and policy.triage_rules:
        try:
            return validate_rules(policy.triage_rules), "brand"
        except FormErrors:
            # Stored rules are validated when saved; a row edited by hand must not stop
            # threads from being published.
            return DEFAULT_RULES, "default (the brand's rules are invalid)"
    return DEFAULT_RULES, "default"


# --- triage ----------------------------------------------------------------------------------


def needs_response(result: TriageResult | None) -> bool:
    """False only when triage (or staff) decided nobody needs to answer."""
    if result is None:
        return True
    return result.reasons.get("needs_response", True) is not False


def _question_body(db: Session, thread: Thread) -> str:
    body = db.scalar(
        select(Post.body_source).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    )
    return body or ""


def _fields(thread: Thread, result: TriageResult | None) -> dict[str, Any]:
    return {
        "interaction_type": thread.interaction_type,
        "sentiment": thread.sentiment,
        "sentiment_score": thread.sentiment_score,
        "priority": thread.priority,
        "author_segment": thread.author_segment,
        "needs_response": needs_response(result),
    }


def _triage_loaded(
    db: Session,
    thread: Thread,
    body: str,
    result: TriageResult | None,
    segment: tuple[Segment, dict[str, Any]],
    rules: tuple[list[dict[str, Any]], str],
    classifier: Classifier,
) -> TriageResult:
    """Classify and store, with everything already loaded (shared by one and many)."""
    kind = thread.kind.value if thread.kind is not None else None
    classification = classifier.classify(
        thread.title, body, locale=thread.locale or "en", kind_hint=kind
    )
    author_segment, segment_reasons = segment
    priority, needs, rule = priority_for(
        classification, author_segment, rules[0], text=f"{thread.title}\n{body}"
    )
    score = round(classification.sentiment_score, 4)
    verdict: dict[str, Any] = {
        "interaction_type": classification.interaction_type.value,
        "sentiment": classification.sentiment.value,
        "sentiment_score": score,
        "author_segment": author_segment.value,
        "priority": priority.value,
        "needs_response": needs,
    }
    reasons: dict[str, Any] = {
        "classification": classification.reasons,
        "segment": segment_reasons,
        "rule": rule,
        "rules_source": rules[1],
        "priority": priority.value,
        "needs_response": needs,
    }
    now = utcnow()
    if result is None:
        result = TriageResult(thread_id=thread.id, classifier=classifier.name)
        db.add(result)
    corrected = result.corrected_at is not None
    if corrected:
        # A correction is never overwritten: the thread keeps the staff's fields, the reasons
        # show what the classifier would say now.
        previous = result.reasons or {}
        reasons["suggested"] = verdict
        reasons["needs_response"] = previous.get("needs_response", True)
        reasons["priority"] = thread.priority
        reasons["rule"] = "staff correction"
        for key in ("corrected_fields", "correction_reason", "followups"):
            if key in previous:
                reasons[key] = previous[key]
    else:
        thread.interaction_type = classification.interaction_type.value
        thread.sentiment = classification.sentiment.value
        thread.sentiment_score = score
        thread.author_segment = author_segment.value
        thread.priority = priority.value
    if thread.author is not None and thread.author.segment != author_segment.value:
        thread.author.segment = author_segment.value
    result.classifier = classifier.name
    result.reasons = reasons
    result.triaged_at = now
    return result


def triage_thread(
    db: Session,
    thread: Thread,
    *,
    classifier: Classifier | None = None,
    rules: list[dict[str, Any]] | None = None,
) -> TriageResult:
    """Classify a thread (title and question), store the fields on the thread and the reasons
    in its TriageResult. `rules` None: the brand's rules, or the defaults. Flushes only."""
    chosen = classifier or default_classifier()
    rule_set = (rules, "given") if rules is not None else _rules_for_brand(db, _brand_id(thread))
    segment = segment_for(db, thread.author, exclude_thread_id=thread.id)
    result = _triage_loaded(
        db,
        thread,
        _question_body(db, thread),
        db.get(TriageResult, thread.id),
        segment,
        rule_set,
        chosen,
    )
    db.flush()
    return result


def _brand_id(thread: Thread) -> int:
    return thread.forum.brand_id


def triage_followup(
    db: Session,
    thread: Thread,
    post: Post,
    *,
    classifier: Classifier | None = None,
) -> TriageResult | None:
    """The asker posted again: the sentiment is read again from the question and the new post
    (whichever is more negative wins, so an author getting angrier raises the priority). The
    type stays (unless a question, praise or idea turned into a problem or complaint) and so
    does the segment. A staff-corrected priority is never lowered, nor a corrected type or
    sentiment changed. None when the post is not a follow-up by the thread's author."""
    if post.is_question or post.author_id is None or post.author_id != thread.author_id:
        return None
    chosen = classifier or default_classifier()
    result = db.get(TriageResult, thread.id)
    if result is None:
        result = triage_thread(db, thread, classifier=chosen)
    question = _question_body(db, thread)
    kind = thread.kind.value if thread.kind is not None else None
    locale = thread.locale or "en"
    combined = chosen.classify(
        thread.title, f"{question}\n\n{post.body_source}", locale=locale, kind_hint=kind
    )
    alone = chosen.classify("", post.body_source, locale=locale, kind_hint=None)
    latest = alone if alone.sentiment_score < combined.sentiment_score else combined
    try:
        kind_now = InteractionType(thread.interaction_type or combined.interaction_type)
    except ValueError:
        kind_now = combined.interaction_type
    try:
        segment = Segment(thread.author_segment or Segment.NEW)
    except ValueError:
        segment = Segment.NEW
    sentiment = _sentiment_of(latest.sentiment_score)
    if (
        sentiment == Sentiment.NEGATIVE
        and kind_now in _MAY_TURN_SOUR
        and alone.interaction_type in (InteractionType.PROBLEM, InteractionType.COMPLAINT)
    ):
        # "Still broken after a week, ridiculous": the question (or praise, or idea) has
        # become a problem or a complaint.
        kind_now = alone.interaction_type
    if kind_now == InteractionType.COMPLAINT and sentiment != Sentiment.NEGATIVE:
        sentiment = Sentiment.NEGATIVE
    reclassified = Classification(
        kind_now, sentiment, latest.sentiment_score, {"followup": latest.reasons}
    )
    rules, _source = _rules_for_brand(db, _brand_id(thread))
    priority, needs, rule = priority_for(
        reclassified,
        segment,
        rules,
        text=f"{thread.title}\n{question}\n{post.body_source}",
    )
    previous = dict(result.reasons or {})
    corrected_fields = set(previous.get("corrected_fields", []))
    if result.corrected_at is None or "sentiment" not in corrected_fields:
        thread.sentiment = sentiment.value
        thread.sentiment_score = round(latest.sentiment_score, 4)
    if result.corrected_at is None or "interaction_type" not in corrected_fields:
        thread.interaction_type = kind_now.value
    staff_needs = previous.get("needs_response", True) is not False
    if result.corrected_at is None or _urgency(priority.value, needs) > _urgency(
        thread.priority, staff_needs
    ):
        thread.priority = priority.value
        previous["needs_response"] = needs
        previous["priority"] = priority.value
        previous["rule"] = rule
    followups = list(previous.get("followups", []))[-9:]
    followups.append({
        "post_id": post.id,
        "sentiment": sentiment.value,
        "sentiment_score": round(latest.sentiment_score, 4),
        "priority": priority.value,
        "needs_response": needs,
        "rule": rule,
    })  # fmt: skip
    previous["followups"] = followups
    result.reasons = previous
    result.triaged_at = utcnow()
    db.flush()
    return result


_MAY_TURN_SOUR = (InteractionType.QUESTION, InteractionType.PRAISE, InteractionType.SUGGESTION)


def _batches(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def triage_many(
    db: Session,
    thread_ids: list[int],
    *,
    classifier: Classifier | None = None,
    history_excludes: Select[Any] | None = None,
) -> int:
    """Bulk triage (imports): threads, questions, results and author statistics are loaded a
    batch of 500 at a time in a handful of queries, each brand's rules once. Flushes only;
    returns how many threads were triaged.

    `history_excludes` selects threads that arrive together with these (an import's own):
    they are not the authors' history, so triaging them again (a resumed import) sees what
    the first time saw."""
    chosen = classifier or default_classifier()
    brand_rules: dict[int, tuple[list[dict[str, Any]], str]] = {}
    # An author's statistics once per call, not once per batch: imports have prolific authors
    # in every batch, and the grouped counts are the slow part.
    known_stats: dict[int, _AuthorStats] = {}
    done = 0
    for batch in _batches(list(dict.fromkeys(thread_ids)), BATCH_SIZE):
        threads = db.scalars(
            select(Thread)
            .where(Thread.id.in_(batch))
            .options(selectinload(Thread.forum), selectinload(Thread.author))
            .order_by(Thread.id)
        ).all()
        # .all(): a Result has keys(), so dict() would take it for a mapping.
        bodies: dict[int, str] = dict(
            db.execute(
                select(Post.thread_id, Post.body_source).where(
                    Post.thread_id.in_(batch), Post.is_question.is_(True)
                )
            ).all()
        )
        results = {
            result.thread_id: result
            for result in db.scalars(select(TriageResult).where(TriageResult.thread_id.in_(batch)))
        }
        author_ids = sorted({thread.author_id for thread in threads if thread.author_id})
        known_stats.update(
            _author_stats(
                db,
                [i for i in author_ids if i not in known_stats],
                history_excludes=history_excludes,
            )
        )
        stats = known_stats
        for thread in threads:
            forum: Forum = thread.forum
            if forum.brand_id not in brand_rules:
                brand_rules[forum.brand_id] = _rules_for_brand(db, forum.brand_id)
            author = thread.author
            if author is None:
                segment = segment_for(db, None)
            else:
                segment = _segment_from(author, stats[author.id], thread.id)
            _triage_loaded(
                db,
                thread,
                bodies.get(thread.id, ""),
                results.get(thread.id),
                segment,
                brand_rules[forum.brand_id],
                chosen,
            )
            done += 1
        db.flush()
    return done


# --- staff corrections -----------------------------------------------------------------------

NO_RESPONSE = "none"


def _choice(
    errors: dict[str, str], field_name: str, value: str | None, allowed: Iterable[str]
) -> str | None:
    if value is None:
        return None
    cleaned = value.strip().lower() if field_name != "priority" else value.strip().upper()
    options = list(allowed)
    if cleaned not in options:
        errors[field_name] = _("Choose one of: %(options)s.") % {"options": ", ".join(options)}
        return None
    return cleaned


def shown_fields(thread: Thread, result: TriageResult | None) -> dict[str, str]:
    """The triage values staff see for a thread (with the same defaults as the panel)."""
    no_response = result is not None and (result.reasons or {}).get("needs_response") is False
    return {
        "interaction_type": thread.interaction_type or InteractionType.QUESTION.value,
        "sentiment": thread.sentiment or Sentiment.NEUTRAL.value,
        "segment": thread.author_segment or Segment.NEW.value,
        "priority": NO_RESPONSE if no_response else thread.priority or Priority.P3.value,
    }


def correct_triage(
    db: Session,
    actor: User,
    thread: Thread,
    *,
    interaction_type: str | None,
    sentiment: str | None,
    priority: str | None,
    segment: str | None,
    reason: str | None,
) -> TriageResult:
    """A moderator, agent or admin sets any of the triage fields ("none" as the priority: no
    response needed). The classifier's answer is kept in `original` (first correction only);
    later triage never overwrites the correction. Audited as "triage.corrected"."""
    if not is_staff(actor):
        raise PermissionDenied(_("Only moderators, agents and admins can correct triage."))
    errors: dict[str, str] = {}
    new_type = _choice(errors, "interaction_type", interaction_type, _LIST_KEYS["types"])
    new_sentiment = _choice(errors, "sentiment", sentiment, _LIST_KEYS["sentiments"])
    new_segment = _choice(errors, "segment", segment, _LIST_KEYS["segments"])
    if priority is not None and priority.strip().lower() == NO_RESPONSE:
        new_priority: str | None = NO_RESPONSE
    else:
        new_priority = _choice(
            errors, "priority", priority, [*(item.value for item in Priority), NO_RESPONSE]
        )
    cleaned_reason = (reason or "").strip() or None
    if cleaned_reason is not None and len(cleaned_reason) > 500:
        errors["reason"] = _("Keep the reason under 500 characters.")
    # A value equal to what is shown now is not a correction (a form sends every field): an
    # untouched priority is then derived again from a corrected type, sentiment or segment
    # instead of being pinned at its old value.
    existing = db.get(TriageResult, thread.id)
    shown = shown_fields(thread, existing)
    given = bool(new_type or new_sentiment or new_segment or new_priority)
    new_type = new_type if new_type != shown["interaction_type"] else None
    new_sentiment = new_sentiment if new_sentiment != shown["sentiment"] else None
    new_segment = new_segment if new_segment != shown["segment"] else None
    new_priority = new_priority if new_priority != shown["priority"] else None
    unchanged = not (new_type or new_sentiment or new_segment or new_priority)
    if not errors and unchanged and given and existing is not None and existing.corrected_at:
        return existing  # repeating a correction already made changes nothing
    if not errors and unchanged:
        errors["interaction_type"] = _("Change at least one of the triage fields.")
    if errors:
        raise FormErrors(errors)

    result = db.get(TriageResult, thread.id)
    if result is None:
        result = triage_thread(db, thread)
    before = _fields(thread, result)
    if result.original is None:
        result.original = before
    if new_type:
        thread.interaction_type = new_type
    if new_sentiment:
        thread.sentiment = new_sentiment
    if new_segment:
        thread.author_segment = new_segment
    reasons = dict(result.reasons or {})
    if new_priority == NO_RESPONSE:
        thread.priority, reasons["needs_response"] = Priority.P4.value, False
    elif new_priority:
        thread.priority, reasons["needs_response"] = new_priority, True
    elif new_type or new_sentiment or new_segment:
        # The staff fixed what the priority is derived from: derive it again from the rules.
        text = f"{thread.title}\n{_question_body(db, thread)}"
        corrected = Classification(
            InteractionType(thread.interaction_type or InteractionType.QUESTION),
            Sentiment(thread.sentiment or Sentiment.NEUTRAL),
            thread.sentiment_score or 0.0,
        )
        rules, _source = _rules_for_brand(db, _brand_id(thread))
        derived, needs, rule = priority_for(
            corrected, Segment(thread.author_segment or Segment.NEW), rules, text=text
        )
        thread.priority, reasons["needs_response"] = derived.value, needs
        reasons["rule_after_correction"] = rule
    reasons["priority"] = thread.priority
    reasons["rule"] = "staff correction"
    fields = {
        "interaction_type": new_type,
        "sentiment": new_sentiment,
        "author_segment": new_segment,
        "priority": new_priority,
    }
    changed = {name for name, value in fields.items() if value}
    reasons["corrected_fields"] = sorted(changed | set(reasons.get("corrected_fields", [])))
    if cleaned_reason:
        reasons["correction_reason"] = cleaned_reason
    reasons.setdefault("needs_response", True)
    after = {**_fields(thread, None), "needs_response": reasons["needs_response"] is not False}
    if after == before and result.corrected_at is not None:
        return result  # the same correction again: nothing changes, nothing to audit
    result.reasons = reasons
    result.corrected_by_id = actor.id
    result.corrected_at = utcnow()
    record_audit(
        db,
        actor=actor,
        action="triage.corrected",
        target_type="thread",
        target_id=thread.id,
        before=before,
        after=after,
        reason=cleaned_reason,
    )
    db.flush()
    return result
