"""Measuring recommenders: splits, ranking metrics, the evaluation loop, tuning and the
literature's protocol.
"""
