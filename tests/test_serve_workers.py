"""`community serve --workers N`, the production server, as a deployment runs it: the real
command in a subprocess on a throwaway PostgreSQL database and the session's Meilisearch.

What is read from the server's side comes from the kernel: which process owns which socket
(/proc/<pid>/fd against /proc/net/tcp) and the sockets' own options (a copy of the web
process's descriptor through pidfd_getfd, as root or the same user may).
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from community.core import meili, migrate
from community.core.auth import Passwords
from community.core.db import make_engine, make_session_factory
from community.demo import seed_demo
from tests.conftest import MEILI_TEST_KEY, SECRET_KEY, ThrowawayPostgres, make_settings

COMMUNITY = str(Path(sys.executable).with_name("community"))
# Importing the site in each process takes seconds on a loaded 2-core machine.
START_SECONDS = 180
TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"
SYS_PIDFD_GETFD = 438  # the same number on x86-64 and arm64


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int

    def web_processes(self) -> set[int]:
        """The processes listening on the port (the supervisor and multiprocessing's resource
        tracker are children too, and listen on nothing)."""
        owners = _socket_owners(_descendants(self.process.pid), self.port)
        return {pid for pid, sockets in owners.items() if TCP_LISTEN in sockets.values()}


def _server_env(tmp_path: Path, database_url: str, meili_url: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "MEILI_URL",
            "MEILI_SEARCH_KEY",
            "MEILI_WRITE_KEY",
            "PROMETHEUS_MULTIPROC_DIR",
            "MALLOC_ARENA_MAX",
            "MODEL_SERVER",
        )
    }
    env |= {
        "DATABASE_URL": database_url,
        "MEILI_MASTER_KEY": MEILI_TEST_KEY,
        "MEILI_INDEX_PREFIX": f"serve{os.getpid()}_",
        "SECRET_KEY": SECRET_KEY,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "SEARCH_MODEL": "off",
        "LOG_LEVEL": "WARNING",
    }
    if meili_url:
        env["MEILI_URL"] = meili_url
    return env


def _start(env: dict[str, str], workers: int) -> Served:
    port = meili.free_port()
    process = subprocess.Popen(
        [COMMUNITY, "serve", "--workers", str(workers), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    served = Served(process, port)
    deadline = time.monotonic() + START_SECONDS
    # Ready when every web process listens: each starts listening once its app has started.
    while len(served.web_processes()) < workers:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"serve exited early ({process.returncode}):\n{output}")
        if time.monotonic() > deadline:
            _kill_group(process)
            raise AssertionError("the web processes did not all start")
        time.sleep(0.1)
    return served


def _kill_group(process: subprocess.Popen[str]) -> None:
    with_group = os.getpgid(process.pid) if process.poll() is None else None
    if with_group is not None:
        os.killpg(with_group, signal.SIGKILL)
    process.wait(timeout=30)


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    pending.append(child)
    return found


def _tcp_sockets(port: int) -> dict[str, str]:
    """inode -> TCP state of every socket whose local port is `port`."""
    sockets: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets[fields[9]] = fields[3]
    return sockets


def _socket_owners(pids: set[int], port: int) -> dict[int, dict[int, str]]:
    """pid -> {fd: TCP state} of the sockets on `port` each process holds."""
    on_port = _tcp_sockets(port)
    owners: dict[int, dict[int, str]] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = target.removeprefix("socket:[").removesuffix("]")
            if target.startswith("socket:[") and inode in on_port:
                owners.setdefault(pid, {})[int(fd)] = on_port[inode]
    return owners


def _tcp_nodelay(pid: int, fd: int) -> int:
    """TCP_NODELAY of another process's socket, read on a copy of its descriptor."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        assert copy >= 0, f"pidfd_getfd: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(pidfd)
    with socket.socket(fileno=copy) as sock:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except OSError:
        return False


def _wait_all_dead(pids: set[int], timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    return {pid for pid in pids if _alive(pid)}


@pytest.fixture(scope="module")
def served_env(
    tmp_path_factory: pytest.TempPathFactory, meili_server: meili.MeiliServer
) -> Iterator[dict[str, str]]:
    """A migrated PostgreSQL database with the demo brand (thread 1 has answers)."""
    database = ThrowawayPostgres.create()
    tmp_path = tmp_path_factory.mktemp("serve_workers")
    migrate.upgrade(database.url)
    engine = make_engine(database.url)
    with make_session_factory(engine)() as db:
        seed_demo(db, Passwords(make_settings(tmp_path, database.url, meili_server.url)))
        db.commit()
    engine.dispose()
    yield _server_env(tmp_path, database.url, meili_server.url)
    database.drop()


@pytest.fixture(scope="module")
def served(served_env: dict[str, str]) -> Iterator[Served]:
    server = _start(served_env, workers=2)
    yield server
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            _kill_group(server.process)


@pytest.mark.long
def test_kept_alive_connection_does_not_stall(served: Served) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        for _ in range(20):
            connection.request("GET", "/t/1")
            response = connection.getresponse()
            assert response.status == 200
            assert "Wi-Fi drops every evening" in response.read().decode()

        # The web process's side of this very connection has Nagle off: the body of a response
        # goes out at once after its headers instead of waiting for the client's ACK.
        client_port = connection.sock.getsockname()[1]
        server_side = _server_side_of(served, client_port)
        assert server_side is not None, "no web process holds the connection"
        assert _tcp_nodelay(*server_side) == 1

        # The same, seen from the client. A stalled response waits for the client's delayed ACK
        # of its headers, and Linux never delays an ACK by less than 40 ms (TCP_DELACK_MIN):
        # every request after the first pays it, so the median could not be under 40 ms. A
        # response the app makes in microseconds (not the page: rendering it takes tens of
        # milliseconds on a loaded machine) leaves all the margin to the transport: measured
        # 3.5 ms median at a load average of 16 on 2 cores.
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            timings.append(time.perf_counter() - started)
            assert response.status == 200
        assert statistics.median(timings[1:]) < 0.040, timings
    finally:
        connection.close()


def _server_side_of(served: Served, client_port: int) -> tuple[int, int] | None:
    """(pid, fd) of the web process socket connected to our client port."""
    wanted = {
        fields[9]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
        if int(fields[2].rsplit(":", 1)[1], 16) == client_port
        and int(fields[1].rsplit(":", 1)[1], 16) == served.port
    }
    for pid in served.web_processes():
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with_target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if with_target.removeprefix("socket:[").removesuffix("]") in wanted:
                return pid, int(fd)
    return None


@pytest.mark.long
def test_connections_spread_over_every_web_process(served: Served) -> None:
    # All 16 connect before any sends a request, as wrk's do: with one listening socket shared
    # by every process, the first to wake accepts the whole burst and keeps it.
    connections = [
        http.client.HTTPConnection("127.0.0.1", served.port, timeout=30) for _ in range(16)
    ]
    try:
        for connection in connections:
            connection.connect()
        web = served.web_processes()
        assert len(web) == 2
        held = _held_once_accepted(served, web, 16)
        # The kernel picks a process by a hash of each connection's addresses: all 16 landing
        # on one of two has a chance of 2 in 65,536.
        assert all(held.get(pid, 0) > 0 for pid in web), held
        for connection in connections:
            connection.request("GET", "/healthz")
            assert connection.getresponse().read()
        owners = _socket_owners(web, served.port)
        # Every listening socket has Nagle off, and the supervisor listens on nothing.
        for pid, sockets in owners.items():
            for fd, state in sockets.items():
                if state == TCP_LISTEN:
                    assert _tcp_nodelay(pid, fd) == 1
        supervisor = _socket_owners({served.process.pid}, served.port)
        assert TCP_LISTEN not in supervisor.get(served.process.pid, {}).values()
        # /metrics adds up every process's counts (the run's PROMETHEUS_MULTIPROC_DIR), though
        # the process that answers served only some of the 16.
        connections[0].request("GET", "/metrics")
        metrics = connections[0].getresponse().read().decode()
        count = next(
            line.rsplit(" ", 1)[1]
            for line in metrics.splitlines()
            if line.startswith("community_http_request_duration_seconds_count")
            and 'route="/healthz"' in line
        )
        assert float(count) >= 16, metrics
    finally:
        for connection in connections:
            connection.close()


def _held_once_accepted(served: Served, web: set[int], expected: int) -> dict[int, int]:
    """pid -> connections held, once the web processes have accepted all `expected` (a connection
    waiting in a listening socket's queue belongs to no process yet)."""
    deadline = time.monotonic() + 30
    while True:
        held = {
            pid: sum(state == TCP_ESTABLISHED for state in sockets.values())
            for pid, sockets in _socket_owners(web, served.port).items()
        }
        if sum(held.values()) == expected:
            return held
        assert time.monotonic() < deadline, (held, expected)
        time.sleep(0.05)


def _spread(held: dict[int, int], web: set[int]) -> int:
    counts = [held.get(pid, 0) for pid in web]
    return max(counts) - min(counts)


@pytest.mark.long
def test_a_process_holding_more_than_its_share_hands_connections_back(served: Served) -> None:
    web = served.web_processes()
    connections: list[http.client.HTTPConnection] = []
    try:
        # Connect until the kernel's hash has left one process at least two ahead (16 split
        # evenly about one time in five); nobody has sent a request yet.
        held: dict[int, int] = {}
        while len(connections) < 16 or _spread(held, web) < 2:
            assert len(connections) < 64, held
            connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
            connection.connect()
            connections.append(connection)
            held = _held_once_accepted(served, web, len(connections))
        uneven = dict(held)
        handed_back = 0
        for _round in range(40):
            for connection in connections:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                assert response.status == 200 and response.read()
                if response.getheader("connection") == "close":
                    handed_back += 1
            for connection in connections:
                if connection.sock is None:  # closed after its response: the client reconnects
                    connection.connect()
            held = _held_once_accepted(served, web, len(connections))
            if _spread(held, web) <= 1:
                break
        # Each process now holds its share (to one, for an odd count), where the kernel's
        # hash alone had left them apart.
        assert _spread(held, web) <= 1, (uneven, held)
        assert handed_back >= (_spread(uneven, web)) // 2, (uneven, held, handed_back)
    finally:
        for connection in connections:
            connection.close()


def _model_servers(served: Served) -> set[int]:
    found = set()
    for pid in _descendants(served.process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"model-server" in command and _alive(pid):
            found.add(pid)
    return found


def _readyz(served: Served) -> dict[str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        connection.request("GET", "/readyz")
        checks: dict[str, str] = json.loads(connection.getresponse().read())["checks"]
        return checks
    finally:
        connection.close()


@pytest.mark.long
def test_web_processes_share_one_model_server_that_comes_back(served: Served) -> None:
    # The supervisor starts it on a thread of its own, beside the web processes: on a loaded
    # machine it may not be running yet when they listen (or be in its 1 s restart pause).
    deadline = time.monotonic() + START_SECONDS
    while not (running := _model_servers(served)):
        assert time.monotonic() < deadline, "no model server started"
        time.sleep(0.2)
    (first,) = running
    for pid in served.web_processes():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        addresses = [item for item in environ if item.startswith(b"MODEL_SERVER=")]
        assert len(addresses) == 1, environ
        socket_path = Path(addresses[0].split(b"=", 1)[1].decode())
        assert socket_path.is_socket()
        # Only this user can reach the socket: its directory is private.
        assert socket_path.parent.stat().st_mode & 0o077 == 0
        # Two malloc arenas per process, not eight per core (docs/serving.md, "Memory").
        assert b"MALLOC_ARENA_MAX=2" in environ
    assert _readyz(served)["models"] == "ok"

    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + START_SECONDS
    while True:
        again = _model_servers(served) - {first}
        if again and _readyz(served)["models"] == "ok":
            break
        assert time.monotonic() < deadline, "no model server came back"
        time.sleep(0.2)
    assert len(again) == 1


@pytest.mark.long
def test_sigterm_stops_every_process_and_exits_0(served_env: dict[str, str]) -> None:
    server = _start(served_env, workers=2)
    children = _descendants(server.process.pid)
    assert len(server.web_processes()) == 2
    try:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
        assert _wait_all_dead(children) == set(), "processes outlived the server"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=5)
    finally:
        if server.process.poll() is None:
            _kill_group(server.process)


@pytest.mark.long
def test_killed_supervisor_takes_its_web_processes_with_it(
    served_env: dict[str, str], tmp_path: Path
) -> None:
    # Its own metrics directory: a killed supervisor cannot remove the one it would make.
    env = served_env | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    server = _start(env, workers=1)
    web = server.web_processes() | _model_servers(server)
    assert len(web) == 2
    try:
        server.process.kill()  # SIGKILL: no chance to stop its children
        server.process.wait(timeout=30)
        assert _wait_all_dead(web) == set(), "a process outlived its supervisor"
    finally:
        for pid in web:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_workers_without_meili_url_is_refused(tmp_path: Path) -> None:
    env = _server_env(tmp_path, f"sqlite:///{tmp_path / 'site.db'}", meili_url=None)
    result = _serve_refused(env, meili.free_port())
    assert result.returncode == 2, result.stderr
    assert "--workers needs MEILI_URL" in result.stderr
    assert not (tmp_path / "instance" / "meili").exists()  # no managed Meilisearch started


def test_taken_port_is_refused_before_any_process_starts(served_env: dict[str, str]) -> None:
    # Another server on the port, with SO_REUSEPORT as a second `community serve --workers` has:
    # the kernel would let us share the port with it, and the connections between us.
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = _serve_refused(served_env, port)
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def _serve_refused(env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    """`community serve --workers 2`, expected to stop before serving (a timeout if it serves)."""
    return subprocess.run(
        [COMMUNITY, "serve", "--workers", "2", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
