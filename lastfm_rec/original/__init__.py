"""The original notebook's model: the TensorFlow 1-style CFModel, its solvers, fold-in and the
embedding recommendations of its section 3.
"""
