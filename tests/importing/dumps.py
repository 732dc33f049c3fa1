"""Small Stack Exchange data dumps written into temporary folders, in the official shape.

The real dumps are UTF-8 with a byte-order mark, CRLF line ends, one `<row .../>` per line and
every field an attribute (HTML bodies escaped inside). `Dump` holds rows as plain dicts, in
the order the attributes appear in the real files, and `write()` lays them out the same way,
so the reader under test sees what it sees in production. `realistic_dump()` is a small site
with every case the importer has to handle; the ids it uses are named in `Ids`.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

# File name -> root element, as in the official dumps.
ROOTS = {
    "Users.xml": "users",
    "Tags.xml": "tags",
    "Posts.xml": "posts",
    "Comments.xml": "comments",
    "Votes.xml": "votes",
    "PostLinks.xml": "postlinks",
    "PostHistory.xml": "posthistory",
}
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
NEWLINE = "\r\n"
# What the dumps escape in attribute values besides & < > (done by `escape` itself).
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "\n": "&#xA;", "\r": "&#xD;", "\t": "&#x9;"}

Row = dict[str, object]

VOTE_ACCEPTED, VOTE_UP, VOTE_DOWN, VOTE_FAVOURITE, VOTE_BOUNTY_START = 1, 2, 3, 5, 8
LINK_RELATED, LINK_DUPLICATE = 1, 3
HISTORY_BODY_EDIT, HISTORY_CLOSED, HISTORY_REOPENED = 5, 10, 11
# Close reason ids (the close event's Comment): newer dumps', then older dumps'.
CLOSE_DUPLICATE, CLOSE_OFF_TOPIC, CLOSE_TOO_BROAD, CLOSE_OLD_TOO_LOCALIZED = 101, 102, 104, 7


def attribute(value: object) -> str:
    return '"' + escape(str(value), _ATTRIBUTE_ENTITIES) + '"'


def row_xml(row: Mapping[str, object]) -> str:
    """`<row A="..." B="..." />`; attributes whose value is None are left out (as the dumps
    leave out, say, OwnerUserId of a deleted account)."""
    fields = " ".join(
        f"{name}={attribute(value)}" for name, value in row.items() if value is not None
    )
    return f"<row {fields} />"


def file_text(root: str, rows: list[Row], *, doctype: str | None = None) -> str:
    lines = [XML_DECLARATION]
    if doctype:
        lines.append(doctype)
    lines.append(f"<{root}>")
    lines.extend(f"  {row_xml(row)}" for row in rows)
    lines.append(f"</{root}>")
    return NEWLINE.join(lines)


@dataclass
class Dump:
    users: list[Row] = field(default_factory=list)
    tags: list[Row] = field(default_factory=list)
    posts: list[Row] = field(default_factory=list)
    comments: list[Row] = field(default_factory=list)
    votes: list[Row] = field(default_factory=list)
    post_links: list[Row] = field(default_factory=list)
    post_history: list[Row] = field(default_factory=list)
    # File name -> a DOCTYPE declaration written after the XML declaration (hostile dumps).
    doctypes: dict[str, str] = field(default_factory=dict)

    def rows(self, file: str) -> list[Row]:
        return {
            "Users.xml": self.users,
            "Tags.xml": self.tags,
            "Posts.xml": self.posts,
            "Comments.xml": self.comments,
            "Votes.xml": self.votes,
            "PostLinks.xml": self.post_links,
            "PostHistory.xml": self.post_history,
        }[file]

    def write(self, directory: Path, *, leave_out: Collection[str] = ()) -> Path:
        """Write every file (but those in `leave_out`) into `directory`, replacing old ones."""
        directory.mkdir(parents=True, exist_ok=True)
        for file, root in ROOTS.items():
            path = directory / file
            if file in leave_out:
                path.unlink(missing_ok=True)
                continue
            text = file_text(root, self.rows(file), doctype=self.doctypes.get(file))
            # utf-8-sig: the dumps start with a byte-order mark.
            path.write_text(text, encoding="utf-8-sig", newline="")
        return directory

    def copy(self) -> Dump:
        return copy.deepcopy(self)

    def next_vote_id(self) -> int:
        return max((int(str(row["Id"])) for row in self.votes), default=0) + 1


def cut_mid_row(path: Path, line: int) -> None:
    """Truncate the file half way through its `line`-th line (1-based), as an interrupted
    download would leave it."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    kept = b"\n".join(lines[: line - 1])
    target = lines[line - 1]
    path.write_bytes(kept + b"\n" + target[: len(target) // 2])


# --- rows ------------------------------------------------------------------------------------


def user(user_id: int, name: str | None, reputation: int, created: str) -> Row:
    return {
        "Id": user_id,
        "Reputation": reputation,
        "CreationDate": created,
        "DisplayName": name,
        "LastAccessDate": created,
        "Views": 0,
        "UpVotes": 0,
        "DownVotes": 0,
    }


def question(
    post_id: int,
    *,
    title: str,
    body: str,
    tags: str,
    owner: int | None,
    created: str,
    views: int = 0,
    score: int = 0,
    accepted: int | None = None,
    answers: int = 0,
    comments: int = 0,
    last_activity: str | None = None,
) -> Row:
    return {
        "Id": post_id,
        "PostTypeId": 1,
        "AcceptedAnswerId": accepted,
        "CreationDate": created,
        "Score": score,
        "ViewCount": views,
        "Body": body,
        "OwnerUserId": owner,
        "LastActivityDate": last_activity or created,
        "Title": title,
        "Tags": tags,
        "AnswerCount": answers,
        "CommentCount": comments,
        "ContentLicense": "CC BY-SA 3.0",
    }


def answer(
    post_id: int, *, parent: int, body: str, owner: int | None, created: str, score: int = 0
) -> Row:
    return {
        "Id": post_id,
        "PostTypeId": 2,
        "ParentId": parent,
        "CreationDate": created,
        "Score": score,
        "Body": body,
        "OwnerUserId": owner,
        "LastActivityDate": created,
        "CommentCount": 0,
        "ContentLicense": "CC BY-SA 3.0",
    }


def comment(
    comment_id: int,
    *,
    post: int,
    text: str,
    created: str,
    user: int | None = None,
    user_name: str | None = None,
    score: int = 0,
) -> Row:
    return {
        "Id": comment_id,
        "PostId": post,
        "Score": score,
        "Text": text,
        "CreationDate": created,
        "UserDisplayName": user_name,
        "UserId": user,
        "ContentLicense": "CC BY-SA 3.0",
    }


def vote(vote_id: int, *, post: int, kind: int, created: str = "2017-01-02T00:00:00.000") -> Row:
    return {"Id": vote_id, "PostId": post, "VoteTypeId": kind, "CreationDate": created}


def votes(first_id: int, *, post: int, kind: int, count: int) -> list[Row]:
    return [vote(first_id + offset, post=post, kind=kind) for offset in range(count)]


def link(link_id: int, *, post: int, related: int, kind: int) -> Row:
    return {
        "Id": link_id,
        "CreationDate": "2017-01-03T10:00:00.000",
        "PostId": post,
        "RelatedPostId": related,
        "LinkTypeId": kind,
    }


def history(event_id: int, *, post: int, kind: int, created: str, comment: object = None) -> Row:
    """A PostHistory row; close events carry their reason id in `Comment`."""
    return {
        "Id": event_id,
        "PostHistoryTypeId": kind,
        "PostId": post,
        "RevisionGUID": f"00000000-0000-0000-0000-{event_id:012d}",
        "CreationDate": created,
        "UserId": -1,
        "Comment": comment,
        "Text": '{"Voters":[{"Id":2,"DisplayName":"Aisha Khan"}]}' if kind == 10 else None,
        "ContentLicense": "CC BY-SA 3.0",
    }


def tag(tag_id: int, name: str, count: int) -> Row:
    return {"Id": tag_id, "TagName": name, "Count": count}


# --- a small realistic site ------------------------------------------------------------------


class Ids:
    """The source ids `realistic_dump()` uses."""

    BOT, AISHA, BO = -1, 2, 3
    Q_MQTT, Q_HUB, Q_HUB_DUPLICATE, Q_GATEWAY = 1, 2, 3, 4
    A_MQTT_ACCEPTED, A_MQTT_BOT = 5, 6
    A_HUB_ACCEPTED, A_HUB_OTHER = 7, 8
    A_GATEWAY, A_GATEWAY_ORPHAN = 9, 10
    TAG_WIKI = 11
    C_ON_QUESTION, C_ON_ANSWER, C_DELETED_USER, C_MISSING_POST, C_ON_GATEWAY = 1, 2, 3, 4, 5
    MISSING_POST = 999
    # Only in `with_closures()`.
    Q_OFF_TOPIC, Q_REOPENED, Q_TOO_BROAD, Q_UNLINKED_DUPLICATE, Q_OLD_REASON = 12, 13, 14, 15, 16
    QUESTIONS = (Q_MQTT, Q_HUB, Q_HUB_DUPLICATE, Q_GATEWAY)
    ANSWERS = (
        A_MQTT_ACCEPTED,
        A_MQTT_BOT,
        A_HUB_ACCEPTED,
        A_HUB_OTHER,
        A_GATEWAY,
        A_GATEWAY_ORPHAN,
    )


MQTT_BODY = (
    "<p>Use <code>mqtt</code> with a <strong>keepalive</strong> of 60 seconds? "
    'The <a href="https://mqtt.org/faq" rel="nofollow noreferrer">MQTT FAQ</a> is vague.</p>\n'
    "<p>My broker drops the connection every few minutes.</p>\n"
)
ACCEPTED_MQTT_BODY = (
    "<p>Set the keepalive on the client and run the broker verbosely:</p>\n"
    "<pre><code>mosquitto -v -c /etc/mosquitto/mosquitto.conf\n</code></pre>\n"
    "<p>Then watch for <em>PINGREQ</em> packets.</p>\n"
)


def realistic_dump() -> Dump:
    """3 users (with the community bot), 4 questions, 6 answers (2 accepted), a tag wiki,
    comments (one by a deleted account, one on a deleted post), votes of every kind (one on a
    deleted post), a duplicate link and a related link, and a tag with a name not allowed."""
    i = Ids
    dump = Dump()
    dump.users = [
        user(i.BOT, "Community", 1, "2016-12-05T22:23:31.833"),
        user(i.AISHA, "Aisha Khan", 1520, "2016-12-06T17:03:12.100"),
        user(i.BO, "Bo Li", 230, "2016-12-07T08:15:00.000"),
    ]
    dump.tags = [
        tag(1, "mqtt", 1),
        tag(2, "networking", 1),
        tag(3, "zigbee", 2),
        tag(4, "alexa", 2),
        tag(5, "security", 1),
        tag(6, "-bad-tag", 1),
    ]
    dump.posts = [
        question(
            i.Q_MQTT,
            title="How do I keep MQTT connections alive?",
            body=MQTT_BODY,
            tags="<mqtt><networking>",
            owner=i.AISHA,
            created="2016-12-06T17:10:44.557",
            last_activity="2017-01-05T00:18:00.000",
            views=120,
            score=5,
            accepted=i.A_MQTT_ACCEPTED,
            answers=2,
            comments=1,
        ),
        answer(
            i.A_MQTT_ACCEPTED,
            parent=i.Q_MQTT,
            body=ACCEPTED_MQTT_BODY,
            owner=i.BO,
            created="2016-12-06T18:00:00.000",
            score=2,
        ),
        answer(
            i.A_MQTT_BOT,
            parent=i.Q_MQTT,
            body="<p>Community wiki: see the broker's documentation.</p>\n",
            owner=i.BOT,
            created="2016-12-07T09:00:00.000",
            score=-1,
        ),
        question(
            i.Q_HUB,
            title="Which Zigbee hub works with Alexa?",
            body="<p>I have an Echo Plus and want a hub for Zigbee bulbs.</p>\n",
            tags="<zigbee><alexa>",
            owner=i.BO,
            created="2016-12-08T10:00:00.000",
            views=45,
            score=3,
            accepted=i.A_HUB_ACCEPTED,
            answers=2,
        ),
        answer(
            i.A_HUB_ACCEPTED,
            parent=i.Q_HUB,
            body="<p>The Echo Plus <em>is</em> a Zigbee hub.</p>\n",
            owner=i.AISHA,
            created="2016-12-08T11:00:00.000",
            score=1,
        ),
        answer(
            i.A_HUB_OTHER,
            parent=i.Q_HUB,
            body="<p>A Hue bridge also works.</p>\n",
            owner=i.BO,
            created="2016-12-09T11:00:00.000",
        ),
        question(
            i.Q_HUB_DUPLICATE,
            title="Alexa cannot find my Zigbee bulbs",
            body="<p>Discovery finds nothing.</p>\n",
            tags="<alexa><zigbee>",
            owner=i.AISHA,
            created="2016-12-10T10:00:00.000",
            views=10,
        ),
        question(
            i.Q_GATEWAY,
            title="Securing a Raspberry Pi gateway",
            body="<p>What should I lock down first?</p>\n",
            # The newer dumps' tag format, and a name this site does not allow.
            tags="|security|raspberry-pi|-bad-tag|",
            owner=None,  # the asker's account was deleted
            created="2016-12-11T10:00:00.000",
            views=300,
            answers=2,
        ),
        answer(
            i.A_GATEWAY,
            parent=i.Q_GATEWAY,
            body="<p>Change the default password.</p>\n",
            owner=i.AISHA,
            created="2016-12-11T12:00:00.000",
        ),
        answer(
            i.A_GATEWAY_ORPHAN,
            parent=i.Q_GATEWAY,
            body="<p>Disable SSH password logins.</p>\n",
            owner=None,
            created="2016-12-12T12:00:00.000",
        ),
        {
            "Id": i.TAG_WIKI,
            "PostTypeId": 5,
            "CreationDate": "2016-12-13T12:00:00.000",
            "Score": 0,
            "Body": "<p>MQTT is a publish/subscribe protocol.</p>",
            "OwnerUserId": -1,
            "LastActivityDate": "2016-12-13T12:00:00.000",
            "CommentCount": 0,
        },
    ]
    dump.comments = [
        comment(
            i.C_ON_QUESTION,
            post=i.Q_MQTT,
            text="Which broker do you use?",
            created="2016-12-06T17:41:42.283",
            user=i.BO,
            score=2,
        ),
        comment(
            i.C_ON_ANSWER,
            post=i.A_MQTT_ACCEPTED,
            text="Thanks, that fixed it.",
            created="2016-12-06T19:00:00.000",
            user=i.AISHA,
        ),
        comment(
            i.C_DELETED_USER,
            post=i.A_MQTT_ACCEPTED,
            text="I had the same problem with a Sonoff.",
            created="2016-12-07T19:00:00.000",
            user_name="Gone Person",
        ),
        comment(
            i.C_MISSING_POST,
            post=i.MISSING_POST,
            text="A comment on a post deleted at the source.",
            created="2016-12-07T20:00:00.000",
            user=i.BO,
        ),
        comment(
            i.C_ON_GATEWAY,
            post=i.A_GATEWAY,
            text="And keep it updated.",
            created="2016-12-12T20:00:00.000",
            user=i.BO,
        ),
    ]
    dump.votes = [
        *votes(1, post=i.Q_MQTT, kind=VOTE_UP, count=2),
        vote(3, post=i.Q_MQTT, kind=VOTE_FAVOURITE),
        *votes(4, post=i.A_MQTT_ACCEPTED, kind=VOTE_UP, count=3),
        vote(7, post=i.A_MQTT_ACCEPTED, kind=VOTE_DOWN),
        vote(8, post=i.A_MQTT_ACCEPTED, kind=VOTE_ACCEPTED),
        vote(9, post=i.A_MQTT_BOT, kind=VOTE_DOWN),
        vote(10, post=i.A_HUB_ACCEPTED, kind=VOTE_UP),
        vote(11, post=i.Q_HUB, kind=VOTE_BOUNTY_START),
        vote(12, post=i.MISSING_POST, kind=VOTE_UP),
    ]
    dump.post_links = [
        link(1, post=i.Q_HUB_DUPLICATE, related=i.Q_HUB, kind=LINK_DUPLICATE),
        link(2, post=i.Q_GATEWAY, related=i.Q_MQTT, kind=LINK_RELATED),
    ]
    return dump


def with_closures(dump: Dump) -> Dump:
    """`dump` (a `realistic_dump()`) plus questions closed at the source: one as off-topic,
    one closed and later reopened (its events listed out of date order), one closed as too
    broad after a reopen, a duplicate close with no PostLinks row, an older dump's reason
    id; and a duplicate close of the linked duplicate, an edit and a close on a missing post."""
    i = Ids
    extra = [
        (i.Q_OFF_TOPIC, "Best pizza near the office?"),
        (i.Q_REOPENED, "Pairing a Zigbee sensor with two hubs"),
        (i.Q_TOO_BROAD, "Everything about home automation"),
        (i.Q_UNLINKED_DUPLICATE, "MQTT keeps disconnecting"),
        (i.Q_OLD_REASON, "My neighbour's doorbell on 12 May"),
    ]
    for number, (post_id, title) in enumerate(extra):
        dump.posts.append(
            question(
                post_id,
                title=title,
                body=f"<p>{title}: details inside.</p>\n",
                tags="<zigbee>",
                owner=i.BO,
                created=f"2017-02-0{number + 1}T10:00:00.000",
            )
        )
    dump.posts.append(
        answer(
            20,
            parent=i.Q_REOPENED,
            body="<p>Reset the sensor first.</p>",
            owner=i.AISHA,
            created="2017-02-02T12:00:00.000",
        )
    )
    dump.posts.append(
        answer(
            21, parent=i.Q_TOO_BROAD, body="<p>Start with one hub and automate the lights.</p>",
            owner=i.AISHA, created="2017-02-03T12:00:00.000",
        )
    )  # fmt: skip
    dump.post_history = [
        history(1, post=i.Q_OFF_TOPIC, kind=HISTORY_BODY_EDIT, created="2017-02-01T10:05:00.000"),
        history(
            2, post=i.Q_OFF_TOPIC, kind=HISTORY_CLOSED, created="2017-02-01T11:00:00.000",
            comment=CLOSE_OFF_TOPIC,
        ),
        # Listed before the close it undoes: the dates decide, not the order in the file.
        history(3, post=i.Q_REOPENED, kind=HISTORY_REOPENED, created="2017-02-04T09:00:00.000"),
        history(
            4, post=i.Q_REOPENED, kind=HISTORY_CLOSED, created="2017-02-03T09:00:00.000",
            comment=CLOSE_TOO_BROAD,
        ),
        history(
            5, post=i.Q_TOO_BROAD, kind=HISTORY_CLOSED, created="2017-02-03T10:00:00.000",
            comment=CLOSE_OFF_TOPIC,
        ),
        history(6, post=i.Q_TOO_BROAD, kind=HISTORY_REOPENED, created="2017-02-04T10:00:00.000"),
        history(
            7, post=i.Q_TOO_BROAD, kind=HISTORY_CLOSED, created="2017-02-05T10:00:00.000",
            comment=CLOSE_TOO_BROAD,
        ),
        history(
            8, post=i.Q_UNLINKED_DUPLICATE, kind=HISTORY_CLOSED,
            created="2017-02-05T10:00:00.000", comment=CLOSE_DUPLICATE,
        ),
        history(
            9, post=i.Q_OLD_REASON, kind=HISTORY_CLOSED, created="2017-02-06T10:00:00.000",
            comment=CLOSE_OLD_TOO_LOCALIZED,
        ),
        history(
            10, post=i.Q_HUB_DUPLICATE, kind=HISTORY_CLOSED, created="2017-01-03T10:00:00.000",
            comment=CLOSE_DUPLICATE,
        ),
        history(
            11, post=i.MISSING_POST, kind=HISTORY_CLOSED, created="2017-01-03T10:00:00.000",
            comment=CLOSE_OFF_TOPIC,
        ),
    ]  # fmt: skip
    return dump
