"""The data layer: the HetRec files (find, download, verify, read), synthetic data, the original's
preprocessing, the matrices the models read, and rec sheets.
"""
