"""`python -m vid2mp3_client` is the `vid2mp3` command."""

from vid2mp3_client.cli import main

raise SystemExit(main())
