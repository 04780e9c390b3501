"""Command-line client of the vid2mp3 service; it talks HTTP only."""

__version__ = "0.1.0"
