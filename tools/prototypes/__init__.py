"""Maintainers' prototypes of a design before it moves into a chapter."""
