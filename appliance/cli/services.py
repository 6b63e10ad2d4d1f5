"""Placeholder."""
COMMANDS = []
