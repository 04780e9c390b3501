"""Value objects, entities and errors of vid2mp3, one module per subject. Knows nothing of
Flask, Celery or databases, and imports nothing of ours: import from the submodules."""
