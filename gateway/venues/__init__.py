"""Venue adapters at the edge: the order core's venues that talk to the outside world."""
