#!/usr/bin/env python3
"""Print a Cookie header value signed in as the imported user with the most posts (the signed-in
variant of the benchmark: our anonymous page cache never answers a signed-in visitor, so this
measures the pages rendered every time). Run with the project's venv and PEERS_HOME/us-run/env.sh:
    . "$PEERS_HOME/us-run/env.sh"; "$PEERS_HOME/us/.venv/bin/python" us/make_session.py
Like spirit/make_session.py, the session row is created directly (the imported accounts have no
password); the server then treats the cookie as any signed-in browser's."""

from datetime import timedelta

from sqlalchemy import func, select

from community.core.auth import start_session
from community.core.db import make_engine, make_session_factory
from community.core.models import Post, User
from community.core.security import session_cookie_name
from community.core.settings import Settings

settings = Settings()
sessions = make_session_factory(make_engine(settings.sqlalchemy_url))
with sessions() as db:
    author = (
        select(Post.author_id).group_by(Post.author_id).order_by(func.count().desc()).limit(1)
    ).scalar_subquery()
    user = db.scalars(select(User).where(User.id == author)).one()
    token = start_session(db, user, max_age=timedelta(days=1), ip="127.0.0.1", user_agent="wrk")
    db.commit()
print(f"{session_cookie_name(settings)}={token}")
