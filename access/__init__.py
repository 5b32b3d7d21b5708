"""The access layer: who may reach which application for which enterprise."""
