"""Key rotation: the six steps of the manual procedure as a persisted, resumable state
machine. ``service`` is the server side (state, lock, audit), ``runner`` drives the
steps through a backend (``http_backend`` for the CLI, ``local_backend`` in-process).
See docs/api.md (admin API: rotation) and ``searchgate rotate --help``."""
