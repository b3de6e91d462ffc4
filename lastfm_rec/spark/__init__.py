"""The pipeline on Apache Spark (the ``spark`` extra): session, reading, preprocessing, ALS, the
study against ``implicit`` and the ``lastfm-rec scale`` command. Imported lazily.
"""
