"""Image feature extraction into a benchmark file: settings, image lists and path remapping, the
resumable writer, and the run itself."""
