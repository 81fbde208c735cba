"""Emerging failure signatures: error messages no advisory explains, that concentrate on a few
workers or one release class well beyond their share of placed work.

Pure functions of plain data, in the flow's one direction: `templates` reduces a message to its
stable wording, `collect` gathers per-build records (error templates, step placements) while an
event stream is read, `stats` holds the exact tests, `concentration` applies them to one
template, and `detect` turns every template of a scan into findings of kind `emerging`.
"""
