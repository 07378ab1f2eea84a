"""Whole jobs behind the commands: predict over a source (``predictor``), label images with a teacher model
(``labeler``), and sharding both over several processes (``distributed``).

Layer: top of core (next to training and benchmark); may use evaluation, inference and everything below.
"""
