"""Trackside: a self-hosted live racing and broadcast server for autonomous model cars."""

__version__ = "0.1.0"
