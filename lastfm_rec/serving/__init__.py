"""Serving recommendations: the session over a fitted model, the on-disk cache, explanations and
the ``lastfm-rec`` command line.
"""
