"""What marts.bias_daily holds for rows of predictions, computed in pandas (the oracle of the bias tests)."""

import pandas as pd


def bias_counts(rows: pd.DataFrame, attributes) -> list[pd.DataFrame]:
    """Counts per date, model, attribute and group of ``rows`` (score, decision 0/1, label 0/1 or missing,
    and one column per attribute holding its group), one frame per attribute, without the population
    columns (each test knows its users)."""
    labelled = rows["label"].notna()
    cells = rows.assign(
        is_labelled=labelled,
        tp=(rows["decision"] == 1) & (rows["label"] == 1),
        fp=(rows["decision"] == 1) & (rows["label"] == 0),
        fn=(rows["decision"] == 0) & (rows["label"] == 1),
        tn=(rows["decision"] == 0) & (rows["label"] == 0),
        labelled_positive=rows["label"] == 1,
        labelled_score=rows["score"].where(labelled, 0.0),
    )
    return [
        cells.assign(attribute=attribute, group_value=cells[attribute])
        .groupby(["date", "model_id", "attribute", "group_value"])
        .agg(
            predictions=("score", "size"),
            positives=("decision", "sum"),
            labelled=("is_labelled", "sum"),
            labelled_positives=("labelled_positive", "sum"),
            true_positives=("tp", "sum"),
            false_positives=("fp", "sum"),
            false_negatives=("fn", "sum"),
            true_negatives=("tn", "sum"),
            score_sum=("labelled_score", "sum"),
            label_sum=("labelled_positive", "sum"),
        )
        .reset_index()
        for attribute in attributes
    ]
