"""The web processes' shared table of open connections (community.core.connection_table), with
real processes: a slot is a lock on the file, held by the process that claimed it."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from community.core import connection_table
from community.core.connection_table import ConnectionTable

_FORK = multiprocessing.get_context("fork")


def _member(path: str, opened: int, pipe: Connection) -> None:
    """A stand-in web process: claims a slot, holds `opened` connections, answers questions."""
    table = ConnectionTable(path)
    for _ in range(opened):
        table.opened()
    pipe.send(("slot", table.slot))
    while True:
        question = pipe.recv()
        if question == "over":
            pipe.send(("over", table.over_share()))
        elif question == "close":
            table.closed()
            pipe.send(("held", table.held))
        elif question == "leave":
            table.leave()
            pipe.send(("left", True))
        else:
            return


class Member:
    def __init__(self, path: str, opened: int) -> None:
        self.pipe, theirs = _FORK.Pipe()
        self.process = _FORK.Process(target=_member, args=(path, opened, theirs), daemon=True)
        self.process.start()
        self.slot = self._answer("slot")

    def _answer(self, expected: str) -> object:
        assert self.pipe.poll(30), "the member process did not answer"
        what, value = self.pipe.recv()
        assert what == expected
        return value

    def over_share(self) -> bool:
        self.pipe.send("over")
        return bool(self._answer("over"))

    def close_one(self) -> int:
        self.pipe.send("close")
        return int(self._answer("held"))  # type: ignore[call-overload]

    def kill(self) -> None:
        self.process.kill()
        self.process.join(30)

    def stop(self) -> None:
        if self.process.is_alive():
            self.pipe.send("stop")
            self.process.join(30)


@pytest.fixture
def table_path(tmp_path: Path) -> str:
    path = str(tmp_path / "connections")
    connection_table.create(path)
    return path


@pytest.fixture
def members(table_path: str) -> Iterator[list[Member]]:
    started: list[Member] = []
    yield started
    for member in started:
        member.stop()


def test_the_process_holding_more_than_its_share_is_told_so(
    table_path: str, members: list[Member]
) -> None:
    busy, quiet = Member(table_path, 5), Member(table_path, 3)
    members += [busy, quiet]
    assert {busy.slot, quiet.slot} == {0, 1}  # a slot each
    # 8 connections over 2 processes: a share is 4.
    assert busy.over_share() and not quiet.over_share()
    assert busy.close_one() == 4
    assert not busy.over_share() and not quiet.over_share()


def test_an_uneven_count_within_the_rounded_up_share_is_left_alone(
    table_path: str, members: list[Member]
) -> None:
    members += [Member(table_path, 2), Member(table_path, 1), Member(table_path, 0)]
    # 3 connections over 3 processes: a share is 1, and 2 is more.
    assert [member.over_share() for member in members] == [True, False, False]
    members[0].close_one()
    assert [member.over_share() for member in members] == [False, False, False]


def test_a_lone_process_is_never_over_its_share(table_path: str, members: list[Member]) -> None:
    members.append(Member(table_path, 20))
    assert not members[0].over_share()


def test_a_killed_process_frees_its_slot_and_its_count(
    table_path: str, members: list[Member]
) -> None:
    survivor, doomed = Member(table_path, 3), Member(table_path, 9)
    members += [survivor, doomed]
    assert not survivor.over_share()
    doomed.kill()  # no chance to clear its slot: the kernel drops its lock
    # Its replacement takes the freed slot with a count of its own.
    replacement = Member(table_path, 0)
    members.append(replacement)
    assert replacement.slot == doomed.slot
    assert survivor.over_share()  # 3 against 0: the dead process's 9 no longer count
    survivor.close_one()
    assert survivor.over_share()  # 2 > ceil(2 / 2)
    survivor.close_one()
    assert not survivor.over_share()


def test_a_slot_left_by_a_killed_process_is_cleared_before_anyone_acts_on_it(
    table_path: str, members: list[Member]
) -> None:
    busy, doomed = Member(table_path, 6), Member(table_path, 0)
    members += [busy, doomed]
    assert busy.over_share()  # 6 > ceil(6 / 2)
    doomed.kill()
    # Alone now: its 6 are its whole share, whatever the dead process's slot still says.
    assert not busy.over_share()


def test_leaving_clears_the_slot(table_path: str, members: list[Member]) -> None:
    leaving, staying = Member(table_path, 1), Member(table_path, 4)
    members += [leaving, staying]
    assert staying.over_share()  # 4 > ceil(5 / 2)
    leaving.pipe.send("leave")
    leaving._answer("left")
    assert not staying.over_share()


def test_join_from_environment_claims_only_when_a_table_is_named(
    table_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(connection_table.TABLE_ENV, raising=False)
    monkeypatch.setattr(connection_table, "_joined", None)
    connection_table.join_from_environment()
    assert connection_table.joined() is None
    monkeypatch.setenv(connection_table.TABLE_ENV, table_path)
    connection_table.join_from_environment()
    joined = connection_table.joined()
    assert joined is not None and joined.slot == 0
    with open(table_path, "rb") as table:
        assert int.from_bytes(table.read(8), "little") == os.getpid()
