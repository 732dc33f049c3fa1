"""The shared core every domain builds on: settings, database, the shared tables (users, brands,
forums, threads, posts), accounts and authentication, web helpers, the outbox, mail, i18n, the
audit trail, rate limits and domain events. It imports no domain: Q&A (community/), moderation,
kb and crowd-service sit above it."""
