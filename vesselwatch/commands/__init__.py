"""Command families of the ``vesselwatch`` CLI; each module exposes ``register(app)``."""
