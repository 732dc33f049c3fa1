"""The site: app factory, settings, database, accounts, brands, forums, threads and posts."""
