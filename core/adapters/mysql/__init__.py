"""MySQL: the connection pool, the repositories and the schema migrations."""
