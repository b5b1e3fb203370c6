"""Self-checks for the exercises: one small module per chapter, ``companion.exercises.<chapter>``."""
