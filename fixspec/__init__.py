"""FIX 4.4 dictionary, normalised message types and pure FIX <-> normalised translation.

Imports nothing of ours and does no I/O (``tests/test_layers.py`` checks both); reading and
writing the dictionary file is ``gateway.fix.dictionary``'s.
"""
