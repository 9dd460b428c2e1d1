"""Readers of the class-side files a benchmark is built from: xlsa17 splits and attribute
matrices, attribute names, attribute vectors (pickled or .npy) and word-vector tables."""
