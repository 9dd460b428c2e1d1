"""Synthetic worlds: the embedded default world, worlds shaped like a real dataset's class side
(``--like CUB``), and the cache of generated world files."""
