"""Presentation: result records to documents, and documents to JSON, CSV, Markdown, Rich and plots.

Reads records and never counts (no counting, kinds, blocks or evaluation imports), never imports torch
or the runs.
"""
