"""FIX 4.4 dictionary, normalised message types and pure FIX <-> normalised translation."""
