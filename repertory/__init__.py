"""The employer repertory (werkgeversrepertorium): the first module gated by the access layer."""
