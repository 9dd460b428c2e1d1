"""Performance measurement: `crest bench`."""
