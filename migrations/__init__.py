"""The schema, one forward-only SQL file per version: `NNNN_name.sql`, applied in order by
`python -m core.migrate` (docs/migrations.md)."""
