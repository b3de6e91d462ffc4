"""MLlib ALS on Spark: fitting, factors as numpy arrays, top-N written as Parquet.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import DataFrame


def train_als(ratings: DataFrame, factors: int = 64, regularization: float = 1.0,
              alpha: float = 5.0, iterations: int = 15, seed: int = 42, blocks: int = 2,
              rating: str = "rating", user: str = "u_id", item: str = "a_id") -> ALSModel:
    """MLlib ALS with implicit preferences on ``ratings`` (integer ``user``/``item`` indices).

    ``alpha`` and ``regularization`` have Spark's meaning: confidence ``1 + alpha * rating``
    and a penalty of ``regularization`` times each user's (item's) count of positive
    ratings (see :mod:`lastfm_rec.models.spark_als`). ``blocks`` is the number of user and
    of item blocks (tasks per step): about the cores available, more on a cluster (Spark's
    default is 10). Seeded: the same data, settings, ``blocks`` and ``seed`` give the same
    factors.
    """
    from pyspark.ml.recommendation import ALS

    # Spark's params take Python numbers only (a numpy float32 is refused).
    als = ALS(rank=int(factors), maxIter=int(iterations), regParam=float(regularization),
              alpha=float(alpha), implicitPrefs=True, seed=int(seed), userCol=user,
              itemCol=item, ratingCol=rating, numUserBlocks=int(blocks),
              numItemBlocks=int(blocks), nonnegative=False, coldStartStrategy="drop")
    return als.fit(ratings)

def factor_arrays(model: ALSModel, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """``(user_factors, item_factors)`` as float32 arrays indexed by the model's integer ids;
    ids without ratings (no factors in Spark) get zero rows. Streamed one partition at a time,
    so the driver never holds every factor as Python objects."""
    def dense(frame: DataFrame, n: int) -> np.ndarray:
        out = np.zeros((n, model.rank), dtype=np.float32)
        for row in frame.toLocalIterator():
            out[row["id"]] = row["features"]
        return out

    return dense(model.userFactors, n_users), dense(model.itemFactors, n_items)

def recommend_to_parquet(model: ALSModel, ratings: DataFrame, n: int,
                         out: str | os.PathLike) -> None:
    """Top-``n`` unheard items for every user, computed on Spark and written to Parquet.

    ``recommendForAllUsers`` ranks ``n`` plus the most items any user has heard, the heard
    ones are removed with an anti-join and the best ``n`` kept: rows ``(u_id, rank, a_id,
    score)``, rank 1 best, ties to the lower id, and ``userID`` (the data's user id) first
    when ``ratings`` has it. Nothing is collected to the driver.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    user, item = model.getUserCol(), model.getItemCol()
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    heard = ratings.select(user, item).distinct()
    most = heard.groupBy(user).count().agg(F.max("count")).first()[0] or 0
    ranked = (model.recommendForAllUsers(n + int(most))
              .select(user, F.explode("recommendations").alias("r"))
              .select(user, F.col(f"r.{item}").alias(item), F.col("r.rating").alias("score"))
              .join(heard, [user, item], "left_anti"))
    order = Window.partitionBy(user).orderBy(F.desc("score"), F.asc(item))
    top = ranked.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= n)
    columns = [user, "rank", item, "score"]
    if "userID" in ratings.columns:
        top = top.join(ratings.select("userID", user).distinct(), user)
        columns.insert(0, "userID")
    top.select(*columns).write.mode("overwrite").parquet(str(out))
