"""The measured process of bench_memory.py: a fresh Python that imports the application, creates
it and serves requests in-process, printing its RSS after each step as one JSON object.

Kept to the standard library until the application is imported, so the first figure is what
`import community.app` costs and nothing else (bench_memory.py's own imports stay out of it).
Run by bench_memory.py; by hand:

    .venv/bin/python bench/memory_probe.py imports           # RSS per package, import order
    .venv/bin/python bench/memory_probe.py import numpy      # RSS of one import, fresh process
    DATABASE_URL=... .venv/bin/python bench/memory_probe.py serve --paths paths.json

The import meter attributes every module's RSS growth to the module that was running: a module
is charged what its own body added, not what the modules it imported added (they are charged
themselves). Summed per top-level package, that is what each package costs in the order the
application imports it (a package imported first pays for what later ones then share).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
FIRST_PARTY = ("community", "kb", "crowdservice", "moderation")


def rss_kib() -> int:
    """This process's resident set size in KiB (/proc/self/statm: cheap enough per import)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE_KIB


def peak_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# --- the import meter --------------------------------------------------------------------------


class _MeteredLoader(importlib.abc.Loader):
    """Wraps a module's loader: RSS before and after creating and running the module."""

    def __init__(self, meter: ImportMeter, inner: Any) -> None:
        self._meter = meter
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        self._meter.enter(spec.name)
        try:
            module: ModuleType | None = self._inner.create_module(spec)
        except BaseException:
            self._meter.leave(spec.name)
            raise
        if module is None:  # the default module object: exec_module follows
            return None
        self._meter.pause(spec.name)
        return module

    def exec_module(self, module: ModuleType) -> None:
        name = module.__name__
        self._meter.resume(name)
        try:
            self._inner.exec_module(module)
        finally:
            self._meter.leave(name)

    def __getattr__(self, attribute: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self._inner, attribute)


class ImportMeter(importlib.abc.MetaPathFinder):
    """Charges each module the RSS its own loading added (its imports excluded)."""

    def __init__(self) -> None:
        self.own_kib: dict[str, int] = {}
        self.order: list[str] = []
        self._stack: list[str] = []
        self._mark = rss_kib()
        self._paused: set[str] = set()

    def _charge(self) -> None:
        now = rss_kib()
        if self._stack:
            top = self._stack[-1]
            self.own_kib[top] = self.own_kib.get(top, 0) + now - self._mark
        self._mark = now

    def enter(self, name: str) -> None:
        self._charge()
        self._stack.append(name)
        self.order.append(name)

    def pause(self, name: str) -> None:
        self._charge()
        self._stack.remove(name)
        self._paused.add(name)

    def resume(self, name: str) -> None:
        self._charge()
        if name in self._paused:
            self._paused.discard(name)
            self._stack.append(name)

    def leave(self, name: str) -> None:
        self._charge()
        if self._stack and self._stack[-1] == name:
            self._stack.pop()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _MeteredLoader(self, spec.loader)
                return spec
        return None

    def by_package(self) -> list[tuple[str, int, int]]:
        """(package, KiB, modules) per top-level package, first party per module, in the order
        first imported."""
        totals: dict[str, list[int]] = {}
        for name in self.order:
            top = name.split(".")[0]
            group = name if top in FIRST_PARTY else top
            found = totals.setdefault(group, [0, 0])
            found[0] += self.own_kib.get(name, 0)
            found[1] += 1
        return [(group, kib, count) for group, (kib, count) in totals.items()]


def measure_imports(module: str) -> dict[str, Any]:
    """Import `module` under the meter; RSS before and after, and per package."""
    gc.collect()
    before = rss_kib()
    meter = ImportMeter()
    sys.meta_path.insert(0, meter)
    began = time.perf_counter()
    try:
        importlib.import_module(module)
    finally:
        sys.meta_path.remove(meter)
    return {
        "module": module,
        "seconds": time.perf_counter() - began,
        "before_kib": before,
        "after_kib": rss_kib(),
        "modules": len(meter.order),
        "packages": meter.by_package(),
        "loaded": sorted(sys.modules),
    }


# --- serving in-process ------------------------------------------------------------------------


def serve(paths_file: Path, requests: int, sample_every: int) -> dict[str, Any]:
    """Import and create the app, then send `requests` GETs in-process (the paths cycled, half
    as a signed-in member), RSS sampled on the way."""
    steps: dict[str, Any] = {"start_kib": rss_kib()}
    began = time.perf_counter()
    import community.app  # what is measured

    steps["import_kib"] = rss_kib()
    steps["import_peak_kib"] = peak_kib()
    steps["import_seconds"] = time.perf_counter() - began
    from community.core.settings import Settings  # loaded by the app already

    app = community.app.create_app(Settings())
    gc.collect()
    steps["create_app_kib"] = rss_kib()
    steps["create_app_peak_kib"] = peak_kib()
    plan = json.loads(paths_file.read_text())
    # The test client (httpx, anyio's portal thread) is part of the figures from here on.
    from fastapi.testclient import TestClient

    samples: list[dict[str, int]] = []
    statuses: dict[str, int] = {}
    with TestClient(app, base_url=plan["base_url"]) as anonymous:
        member = TestClient(app, base_url=plan["base_url"])
        login = member.get("/login")
        token = _csrf(login.text)
        signed_in = member.post(
            "/login",
            data={"login": plan["member"], "password": plan["password"], "csrf_token": token},
            follow_redirects=False,
        )
        if signed_in.status_code != 303:
            raise SystemExit(f"login as {plan['member']} answered {signed_in.status_code}")
        steps["lifespan_kib"] = rss_kib()
        steps["lifespan_peak_kib"] = peak_kib()
        paths: list[str] = plan["paths"]
        for number in range(1, requests + 1):
            path = paths[number % len(paths)]
            client = member if number % 2 else anonymous
            status = client.get(path).status_code
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if number % sample_every == 0 or number == requests:
                samples.append({"requests": number, "rss_kib": rss_kib(), "peak_kib": peak_kib()})
        steps["numpy_loaded"] = "numpy" in sys.modules
        steps["engine"] = _engine_state(app)
        steps["asked_status"] = _ask(member, plan)
        steps["asked_kib"] = rss_kib()
        steps["asked_peak_kib"] = peak_kib()
        steps["numpy_after_ask"] = "numpy" in sys.modules
        member.close()
    steps["samples"] = samples
    steps["statuses"] = statuses
    steps["peak_kib"] = peak_kib()
    steps["embedding_loaded"] = sorted(
        name for name in sys.modules if name.startswith(("kb.embeddings.", "py3langid"))
    )
    return steps


def _csrf(text: str) -> str:
    return text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def _ask(member: Any, plan: dict[str, Any]) -> int:
    """Post one question as the member: the language detector runs on its text."""
    form = member.get(plan["ask"])
    answer = member.post(
        plan["ask"],
        data={
            "forum": plan["forum"],
            "title": "Battery drains overnight since the last firmware update",
            "body": "Since updating, my phone loses half its charge overnight with the screen "
            "off and nothing running. Is this a known problem with the update?",
            "kind": "question",
            "csrf_token": _csrf(form.text),
        },
        follow_redirects=False,
    )
    return int(answer.status_code)


def _engine_state(app: Any) -> dict[str, Any]:
    engine = app.state.engine
    cache = getattr(engine, "_compiled_cache", None)
    templates = app.state.templates
    return {
        "pool_size": engine.pool.size(),
        "pool_checked_in": engine.pool.checkedin(),
        "compiled_cache_entries": len(cache) if cache is not None else None,
        "compiled_cache_capacity": getattr(cache, "capacity", None),
        "jinja_templates_cached": len(templates.cache or {}),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("imports", help="RSS per package while importing community.app")
    one = commands.add_parser("import", help="RSS of importing one module in a fresh process")
    one.add_argument("module")
    served = commands.add_parser("serve", help="create the app and serve requests in-process")
    served.add_argument("--paths", type=Path, required=True, help="bench_memory.py's plan")
    served.add_argument("--requests", type=int, default=2000)
    served.add_argument("--sample-every", type=int, default=250)
    args = parser.parse_args(argv)
    if args.command == "imports":
        result = measure_imports("community.app")
    elif args.command == "import":
        before = rss_kib()
        importlib.import_module(args.module)
        result = {"module": args.module, "before_kib": before, "after_kib": rss_kib()}
    else:
        result = serve(args.paths, args.requests, args.sample_every)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
