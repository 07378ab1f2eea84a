"""``kanpose bench``: speed and accuracy of models on one machine, written as CSV/JSON.

Layer: top of core (next to tasks and training); may use evaluation, inference and everything below.
"""
