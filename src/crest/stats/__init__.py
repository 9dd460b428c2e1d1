"""`crest data stats`: what a benchmark's class side says about its attributes (co-occurrence,
redundancy, class separability), with its figures and report."""
