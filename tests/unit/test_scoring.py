"""Unit tests for `predict_batch`: plain pandas in, one typed column per output out (no Spark)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from lakescore.columns import SCORE_ERROR
from lakescore.errors import ScoringError
from lakescore.model import InputColumn, OutputColumn
from lakescore.scoring import executor_label, input_dtypes, predict_batch, predict_valid_rows

LABEL = "models:/meter_risk/3"
PREDICTION = (OutputColumn("prediction", "bigint"),)


class FnModel:
    """A tiny model whose predict returns whatever `fn(batch)` returns."""

    def __init__(self, fn: Callable[[pd.DataFrame], Any]) -> None:
        self.fn = fn

    def predict(self, batch: pd.DataFrame) -> Any:
        return self.fn(batch)


def returning(value: Any) -> FnModel:
    """A model that returns `value` for any batch."""
    return FnModel(lambda _batch: value)


@pytest.fixture
def batch() -> pd.DataFrame:
    """Three rows with an index that does not start at 0, as a later Arrow batch might."""
    return pd.DataFrame(
        {"kwh_7d": [1.0, 5.0, 9.0], "temp": [10.0, 20.0, 30.0]}, index=[100, 101, 102]
    )


def scoring_error(model: Any, batch: pd.DataFrame, outputs: Any) -> str:
    """Run predict_batch expecting a ScoringError; return its message."""
    with pytest.raises(ScoringError) as info:
        predict_batch(model, batch, outputs, LABEL)
    return str(info.value)


# --- shapes -----------------------------------------------------------------------------------


def test_one_dimensional_numpy_output(batch: pd.DataFrame) -> None:
    """A 1-D array becomes the single prediction column, on the batch's index."""
    result = predict_batch(returning(np.array([1, 0, 1])), batch, PREDICTION, LABEL)
    expected = pd.DataFrame({"prediction": np.array([1, 0, 1], dtype="int64")}, index=batch.index)
    pd.testing.assert_frame_equal(result.drop(columns=SCORE_ERROR), expected)


def test_column_vector_output(batch: pd.DataFrame) -> None:
    """A 2-D array of one column is one prediction per row."""
    result = predict_batch(returning(np.array([[1], [2], [3]])), batch, PREDICTION, LABEL)
    assert result["prediction"].tolist() == [1, 2, 3]


def test_series_output_is_taken_by_position(batch: pd.DataFrame) -> None:
    """A Series is read in order, whatever its own index (unless it is the batch's own labels
    in another order, below), and gets the batch's index."""
    series = pd.Series([7, 8, 9], index=[12, 11, 10], name="whatever")
    result = predict_batch(returning(series), batch, PREDICTION, LABEL)
    expected = pd.DataFrame({"prediction": np.array([7, 8, 9], dtype="int64")}, index=batch.index)
    pd.testing.assert_frame_equal(result.drop(columns=SCORE_ERROR), expected)


def grouped_by_tariff(rows: pd.DataFrame) -> pd.DataFrame:
    """A model that scores each tariff apart and concatenates the parts: its rows come back
    grouped, each labelled with the row it belongs to."""
    parts = [g.assign(score=g["kwh_7d"] * 10, seen=g["tariff"]) for _, g in rows.groupby("tariff")]
    return pd.concat(parts)[["score", "seen"]]


def test_a_result_with_the_batchs_own_labels_in_another_order_is_lined_up_by_label() -> None:
    """Read by position, 295 of 296 rows of such a model were stored with another row's
    score, and the run succeeded."""
    batch = pd.DataFrame(
        {"kwh_7d": [1.0, 2.0, 3.0, 4.0], "tariff": ["smart", "flat", "smart", "flat"]},
        index=[40, 41, 42, 43],
    )
    outputs = (OutputColumn("score", "double"), OutputColumn("seen", "string"))
    result = predict_batch(FnModel(grouped_by_tariff), batch, outputs, LABEL)
    assert result["score"].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert result["seen"].tolist() == batch["tariff"].tolist()
    alone = predict_batch(
        FnModel(lambda b: grouped_by_tariff(b)["score"]), batch, PREDICTION, LABEL
    )
    assert alone["prediction"].tolist() == [10, 20, 30, 40]


def test_a_result_of_groupby_apply_is_lined_up_by_its_row_labels() -> None:
    """`groupby(...)[...].apply(f)` labels each row (group, row): read by position, every row
    but the first group's was stored with another row's score, and the run succeeded."""
    batch = pd.DataFrame(
        {"kwh_7d": [1.0, 2.0, 3.0, 4.0], "tariff": ["smart", "flat", "smart", "flat"]},
        index=[40, 41, 42, 43],
    )
    per_tariff = FnModel(lambda b: b.groupby("tariff")["kwh_7d"].apply(lambda s: s * 10))
    assert isinstance(per_tariff.predict(batch.reset_index(drop=True)).index, pd.MultiIndex)
    result = predict_batch(per_tariff, batch, (OutputColumn("prediction", "double"),), LABEL)
    assert result["prediction"].tolist() == [10.0, 20.0, 30.0, 40.0]


def test_a_result_labelled_row_then_rank_is_read_in_its_order() -> None:
    """(row, rank): the ranks are 0..n-1 too, but the rows are the first level, in order."""
    batch = pd.DataFrame({"x": [3.0, 1.0, 2.0, 5.0]})

    def ranked(rows: pd.DataFrame) -> pd.Series:
        out = rows.assign(rank=rows["x"].rank().astype(int) - 1, p=rows["x"] * 10)
        return out.set_index("rank", append=True)["p"]

    result = predict_batch(FnModel(ranked), batch, (OutputColumn("p", "double"),), LABEL)
    assert result["p"].tolist() == [30.0, 10.0, 20.0, 50.0]


def test_one_value_for_one_row_is_its_prediction() -> None:
    """`predictions.squeeze()` of one row is a 0-d array: a batch of one valid row, or a failing
    row isolated on its own, failed the whole run ("an array of shape ()")."""
    one = pd.DataFrame({"kwh_7d": [1.0]}, index=[7])
    result = predict_batch(returning(np.asarray(5)), one, PREDICTION, LABEL)
    assert result["prediction"].tolist() == [5]
    squeezed = FnModel(lambda b: np.asarray(b["kwh_7d"] * 3).squeeze())
    assert predict_batch(squeezed, one, (OutputColumn("p", "double"),), LABEL)["p"].tolist() == [
        3.0
    ]


def test_one_rows_outputs_squeezed_are_that_rows_outputs() -> None:
    """`squeeze()` of a one-row frame is a Series labelled by the outputs (of a (1, 2) array,
    two values): refused as "one value per row", it failed the run."""
    one = pd.DataFrame({"kwh_7d": [1.0]}, index=[7])
    outputs = (OutputColumn("p_ok", "double"), OutputColumn("p_fault", "double"))
    frame = FnModel(lambda b: pd.DataFrame({"p_fault": [0.25], "p_ok": [0.75]}).squeeze())
    array = FnModel(lambda b: np.array([[0.75, 0.25]]).squeeze())
    for model in (frame, array):
        result = predict_batch(model, one, outputs, LABEL)
        assert (result["p_ok"].tolist(), result["p_fault"].tolist()) == ([0.75], [0.25])


def test_one_value_for_several_rows_or_none_is_refused_as_what_it_is(batch: pd.DataFrame) -> None:
    """A `return` left out: None for one row was a missing value, not a broken model."""
    assert "returned None for 3 rows" in scoring_error(returning(None), batch, PREDICTION)
    one = batch.head(1)
    assert "returned None for 1 rows" in scoring_error(returning(None), one, PREDICTION)
    assert "returned an array of shape ()" in scoring_error(
        returning(np.asarray(5)), batch, PREDICTION
    )


def test_a_value_of_the_wrong_type_is_not_quoted_when_messages_are_withheld(
    batch: pd.DataFrame,
) -> None:
    """An echo of a redacted input for a double output: the run's error quoted the value."""
    echo = returning(pd.Series(["jane@example.com", "x", "y"]))
    outputs = (OutputColumn("p", "double"),)
    with pytest.raises(ScoringError) as info:
        predict_batch(echo, batch, outputs, LABEL, withhold_messages=True)
    assert "jane@example.com" not in str(info.value)
    assert "values for p that are not double: ValueError (message withheld" in str(info.value)
    assert info.value.__cause__ is None
    assert "jane@example.com" in scoring_error(echo, batch, outputs)  # not withheld: quoted
    keyed = returning({"jane@example.com": 0.5})
    with pytest.raises(ScoringError) as keys:
        predict_batch(keyed, batch, outputs, LABEL, withhold_messages=True)
    assert "jane@example.com" not in str(keys.value) and "returned a dict;" in str(keys.value)


def test_two_dimensional_array_with_two_outputs(batch: pd.DataFrame) -> None:
    """A 2-D array gives one column per output, in the signature's order."""
    outputs = (OutputColumn("p_ok", "double"), OutputColumn("p_fault", "double"))
    array = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    result = predict_batch(returning(array), batch, outputs, LABEL)
    expected = pd.DataFrame(
        {"p_ok": [0.9, 0.4, 0.2], "p_fault": [0.1, 0.6, 0.8]}, index=batch.index
    )
    pd.testing.assert_frame_equal(result.drop(columns=SCORE_ERROR), expected)


def test_dataframe_output_selected_and_ordered_by_name(batch: pd.DataFrame) -> None:
    """Named DataFrame columns are picked by the output names, in their order; extras dropped."""
    frame = pd.DataFrame(
        {"debug": ["a", "b", "c"], "label": [1, 0, 1], "score": [0.7, 0.2, 0.9]},
        index=[7, 8, 9],
    )
    outputs = (OutputColumn("score", "double"), OutputColumn("label", "bigint"))
    result = predict_batch(returning(frame), batch, outputs, LABEL)
    expected = pd.DataFrame(
        {"score": [0.7, 0.2, 0.9], "label": np.array([1, 0, 1], dtype="int64")},
        index=batch.index,
    )
    pd.testing.assert_frame_equal(result.drop(columns=SCORE_ERROR), expected)


def test_dataframe_with_unnamed_columns_is_taken_by_position(batch: pd.DataFrame) -> None:
    """A frame of default integer column names and the promised width is read in order."""
    frame = pd.DataFrame(np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]))
    outputs = (OutputColumn("p_ok", "double"), OutputColumn("p_fault", "double"))
    result = predict_batch(returning(frame), batch, outputs, LABEL)
    assert list(result.columns) == ["p_ok", "p_fault", SCORE_ERROR]
    assert result["p_fault"].tolist() == [0.1, 0.6, 0.8]


def test_one_named_column_for_one_output_is_taken_whatever_its_name(batch: pd.DataFrame) -> None:
    """A model without an output signature (its output is `prediction`) that returns a
    one-column DataFrame named otherwise is taken by position, as spark_udf does."""
    raw = pd.DataFrame({"score": [0.1, 0.2, 0.3]})
    outputs = (OutputColumn("prediction", "double"),)
    result = predict_batch(returning(raw), batch, outputs, LABEL)
    assert result["prediction"].tolist() == [0.1, 0.2, 0.3]


def test_a_dict_output_is_named_as_such(batch: pd.DataFrame) -> None:
    message = scoring_error(returning({"label": [1, 2, 3]}), batch, PREDICTION)
    assert "dict" in message and "label" in message


def test_result_keeps_the_batch_index(batch: pd.DataFrame) -> None:
    """Every output shape comes back on exactly the batch's index."""
    for value in (
        np.array([1, 2, 3]),
        pd.Series([1, 2, 3], index=[5, 6, 7]),
        pd.DataFrame({"prediction": [1, 2, 3]}, index=[5, 6, 7]),
    ):
        result = predict_batch(returning(value), batch, PREDICTION, LABEL)
        pd.testing.assert_index_equal(result.index, batch.index)


def test_model_sees_the_batch(batch: pd.DataFrame) -> None:
    """The model is called with the batch itself, so predictions follow its rows."""
    model = FnModel(lambda b: b["kwh_7d"] * 2)
    result = predict_batch(model, batch, (OutputColumn("prediction", "double"),), LABEL)
    assert result["prediction"].tolist() == [2.0, 10.0, 18.0]


# --- real sklearn models ----------------------------------------------------------------------


def test_fitted_sklearn_classifier(batch: pd.DataFrame) -> None:
    """A real LogisticRegression's class labels come back as int64 on the batch's index."""
    train = pd.DataFrame({"kwh_7d": [0.0, 1.0, 8.0, 10.0], "temp": [10.0, 12.0, 28.0, 31.0]})
    model = LogisticRegression().fit(train, [0, 0, 1, 1])
    result = predict_batch(model, batch, PREDICTION, LABEL)
    assert result.dtypes["prediction"] == np.dtype("int64")
    assert result["prediction"].tolist() == model.predict(batch).tolist()
    pd.testing.assert_index_equal(result.index, batch.index)


def test_fitted_sklearn_regressor(batch: pd.DataFrame) -> None:
    """A real LinearRegression's predictions come back as float64."""
    train = pd.DataFrame({"kwh_7d": [0.0, 1.0, 2.0], "temp": [1.0, 0.0, 1.0]})
    model = LinearRegression().fit(train, [1.0, 3.0, 5.0])
    result = predict_batch(model, batch, (OutputColumn("prediction", "double"),), LABEL)
    assert result.dtypes["prediction"] == np.dtype("float64")
    np.testing.assert_allclose(result["prediction"], [3.0, 11.0, 19.0])


# --- type coercion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spark_type", "raw", "dtype", "values"),
    [
        ("bigint", np.array([1, 2, 3], dtype="int32"), "int64", [1, 2, 3]),
        ("bigint", np.array([1.0, 2.0, 3.0]), "int64", [1, 2, 3]),
        ("int", np.array([1, 2, 3], dtype="int64"), "int32", [1, 2, 3]),
        ("double", np.array([1, 2, 3], dtype="int64"), "float64", [1.0, 2.0, 3.0]),
        ("double", np.array([0.5, 1.5, 2.5], dtype="float32"), "float64", [0.5, 1.5, 2.5]),
        ("float", np.array([0.5, 1.5, 2.5]), "float32", [0.5, 1.5, 2.5]),
        ("boolean", np.array([1, 0, 1]), "bool", [True, False, True]),
        ("boolean", np.array([True, False, False]), "bool", [True, False, False]),
        ("string", np.array([1, 20, 300]), "object", ["1", "20", "300"]),
        ("string", np.array(["low", "mid", "high"]), "object", ["low", "mid", "high"]),
    ],
)
def test_values_are_coerced_to_the_output_type(
    batch: pd.DataFrame, spark_type: str, raw: Any, dtype: str, values: list[Any]
) -> None:
    """Each Spark type gets the pandas dtype Arrow needs for it."""
    outputs = (OutputColumn("prediction", spark_type),)
    result = predict_batch(returning(raw), batch, outputs, LABEL)
    assert result.dtypes["prediction"] == np.dtype(dtype)
    assert result["prediction"].tolist() == values


MISSING = "the model returned no value (null or NaN) for required output(s) prediction"


@pytest.mark.parametrize(
    ("spark_type", "raw"),
    [
        ("string", np.array(["a", None, np.nan], dtype=object)),
        ("double", np.array([1.0, np.nan, None], dtype=object)),
        ("float", np.array([1.0, np.nan, np.nan])),
        ("bigint", pd.Series([1.0, None, np.nan])),
        ("int", pd.Series([1, None, None], dtype=object)),
        ("boolean", pd.Series([True, None, np.nan], dtype=object)),
        ("timestamp", pd.Series([datetime(2026, 1, 1), None, pd.NaT])),
    ],
)
def test_rows_a_required_output_leaves_empty_get_an_error_not_a_prediction(
    batch: pd.DataFrame, spark_type: str, raw: Any
) -> None:
    """None or NaN where the signature promises a value: the row is quarantined as the model's
    error (and counts against the limits); the other rows keep their values, typed."""
    result = predict_batch(returning(raw), batch, (OutputColumn("prediction", spark_type),), LABEL)
    assert result[SCORE_ERROR].tolist() == [None, MISSING, MISSING]
    assert pd.notna(result["prediction"].iloc[0])
    assert result["prediction"].iloc[1:].isna().all()


@pytest.mark.parametrize(
    ("spark_type", "raw", "first"),
    [
        ("string", np.array(["a", None, np.nan], dtype=object), "a"),
        ("double", np.array([1.5, np.nan, np.nan]), 1.5),
        ("bigint", pd.Series([2**60, None, np.nan], dtype=object), 2**60),
        ("boolean", pd.Series([True, None, None], dtype=object), True),
    ],
)
def test_an_optional_output_may_be_null_on_a_scored_row(
    batch: pd.DataFrame, spark_type: str, raw: Any, first: Any
) -> None:
    """`infer_signature` marks an output optional when its example holds nulls: stored null, the
    row scored. A large integer is not rounded through float64 on the way."""
    optional = (OutputColumn("prediction", spark_type, required=False),)
    result = predict_batch(returning(raw), batch, optional, LABEL)
    assert result[SCORE_ERROR].isna().all()
    assert result["prediction"].iloc[0] == first
    assert result["prediction"].iloc[1:].isna().all()


def test_the_error_names_each_required_output_left_empty(batch: pd.DataFrame) -> None:
    frame = pd.DataFrame({"score": [0.5, np.nan, np.nan], "label": ["a", None, "b"]})
    outputs = (OutputColumn("score", "double"), OutputColumn("label", "string"))
    errors = predict_batch(returning(frame), batch, outputs, LABEL)[SCORE_ERROR].tolist()
    assert errors[0] is None
    assert errors[1].endswith("required output(s) score, label")
    assert errors[2].endswith("required output(s) score")


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [np.array([1, 2]), pd.Series([1, 2, 3, 4]), pd.DataFrame({"prediction": [1]})],
)
def test_wrong_number_of_rows_names_the_model(batch: pd.DataFrame, value: Any) -> None:
    """Too few or too many predictions raise ScoringError naming the model and the counts."""
    message = scoring_error(returning(value), batch, PREDICTION)
    assert LABEL in message
    assert f"for {len(batch)} rows" in message


def test_dataframe_missing_promised_columns(batch: pd.DataFrame) -> None:
    """A frame without the promised columns (and not of their width) raises ScoringError."""
    frame = pd.DataFrame({"score": [0.1, 0.2, 0.3]})
    outputs = (OutputColumn("score", "double"), OutputColumn("label", "bigint"))
    message = scoring_error(returning(frame), batch, outputs)
    assert LABEL in message
    assert "label" in message


def test_dataframe_of_the_right_width_missing_a_promised_column(batch: pd.DataFrame) -> None:
    """Named columns that do not include every promised name raise, not get renamed."""
    frame = pd.DataFrame({"label": [1, 0, 1], "debug": [0.5, 0.5, 0.5]})
    outputs = (OutputColumn("score", "double"), OutputColumn("label", "bigint"))
    message = scoring_error(returning(frame), batch, outputs)
    assert "score" in message


def test_several_columns_from_a_model_without_an_output_signature(batch: pd.DataFrame) -> None:
    """Without an output signature there is one column, typed by scoring.result_type: a model
    that returns three columns is told so, and how to store them, not that a signature it does
    not have promises something else."""
    unsigned = (OutputColumn("prediction", "double", required=False, signed=False),)
    frame = pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [1, 0, 1], "c": ["x", "y", "z"]})
    message = scoring_error(returning(frame), batch, unsigned)
    assert "without an output signature" in message
    assert "scoring.result_type (double)" in message
    assert "infer_signature" in message
    assert "signature promises" not in message
    array_message = scoring_error(returning(np.ones((3, 3))), batch, unsigned)
    assert "(3, 3)" in array_message
    assert "scoring.result_type" in array_message


def test_one_value_per_row_for_two_outputs(batch: pd.DataFrame) -> None:
    """A 1-D result cannot fill two promised outputs."""
    outputs = (OutputColumn("a", "double"), OutputColumn("b", "double"))
    assert LABEL in scoring_error(returning(np.array([1.0, 2.0, 3.0])), batch, outputs)


def test_array_of_the_wrong_width(batch: pd.DataFrame) -> None:
    """A 2-D result of three columns cannot fill two promised outputs."""
    outputs = (OutputColumn("a", "double"), OutputColumn("b", "double"))
    message = scoring_error(returning(np.ones((3, 3))), batch, outputs)
    assert LABEL in message
    assert "(3, 3)" in message


def test_a_double_beyond_the_range_of_a_float_output_fails_the_run(batch: pd.DataFrame) -> None:
    """numpy made 1e300 infinity: the table stored inf where the model said a number."""
    raw = np.array([1.0, 1e300, -np.inf])
    message = scoring_error(returning(raw), batch, (OutputColumn("prediction", "float"),))
    assert "values outside the range of float" in message and LABEL in message
    within = predict_batch(
        returning(np.array([1.0, np.inf, 3.4e38])), batch, (OutputColumn("p", "float"),), LABEL
    )
    assert within["p"].dtype == np.float32 and np.isinf(within["p"].iloc[1])  # inf as given


def test_text_in_a_bigint_output(batch: pd.DataFrame) -> None:
    """Values that are not numbers raise ScoringError rather than a pandas error."""
    raw = np.array(["1", "high", "3"])
    message = scoring_error(returning(raw), batch, PREDICTION)
    assert LABEL in message
    assert "bigint" in message


@pytest.mark.parametrize(
    "raw",
    [
        np.array([1.0, 1.7, 0.2]),
        [1.0, 1.7, None],  # a list holding None: an object column
        np.array([Decimal("1"), Decimal("1.9"), Decimal("2")], dtype=object),
        pd.Categorical([1.5, 2.5, 1.5]),
    ],
    ids=["floats", "list-with-None", "decimals", "categorical"],
)
def test_fractions_in_a_bigint_output(batch: pd.DataFrame, raw: Any) -> None:
    """Non-whole numbers for a bigint output raise rather than being truncated, whatever the
    column's dtype (objects and categoricals were cast to int64, which cut 1.7 to 1)."""
    assert "fractional values" in scoring_error(returning(raw), batch, PREDICTION)


def test_whole_numbers_of_any_dtype_fill_a_bigint_output(batch: pd.DataFrame) -> None:
    raw = np.array([Decimal("1"), 2**62, "3"], dtype=object)
    assert predict_batch(returning(raw), batch, PREDICTION, LABEL)["prediction"].tolist() == [
        1,
        2**62,
        3,
    ]


def test_decimals_beyond_2_to_the_53_fill_a_bigint_output_exactly(batch: pd.DataFrame) -> None:
    """As floats (pd.to_numeric) they would lose their last digits."""
    raw = np.array([Decimal(2**62 + 1), Decimal(1), Decimal(-(2**62) - 1)], dtype=object)
    result = predict_batch(returning(raw), batch, PREDICTION, LABEL)
    assert result["prediction"].tolist() == [2**62 + 1, 1, -(2**62) - 1]


def test_2_to_the_63_as_a_float_is_outside_bigint(batch: pd.DataFrame) -> None:
    """float(2**63) equals the int64 maximum as a float, and int64 wrapped it around to the
    smallest bigint."""
    message = scoring_error(returning(np.array([1.0, 2.0**63, 2.0])), batch, PREDICTION)
    assert "values outside the range of bigint" in message


@pytest.mark.parametrize(
    ("spark_type", "raw", "refused"),
    [
        ("timestamp", np.array([1_700_000_000, 2, 3]), "values other than times"),
        ("timestamp", np.array(["2026-11-27", "x", "y"], dtype=object), "values other than times"),
        ("binary", np.array([1, 2, 3]), "values other than bytes"),
        ("string", np.array([b"a", b"b", b"c"], dtype=object), "bytes, lists, sets or mappings"),
        ("string", [{"label": "POS"}, {"label": "NEG"}, {}], "bytes, lists, sets or mappings"),
        ("string", np.array(["a", {1, 2}, "c"], dtype=object), "bytes, lists, sets or mappings"),
        ("bigint", np.array([1.0, np.inf, 2.0]), "values outside the range of bigint"),
    ],
)
def test_values_an_output_type_would_change_are_refused(
    batch: pd.DataFrame, spark_type: str, raw: Any, refused: str
) -> None:
    """Arrow stored an integer for a timestamp output as microseconds since 1970, and a string
    output held the str() of bytes and dicts ("b'a'", "{'label': 'POS'}")."""
    message = scoring_error(returning(raw), batch, (OutputColumn("p", spark_type),))
    assert refused in message and LABEL in message


def test_times_and_bytes_fill_their_outputs(batch: pd.DataFrame) -> None:
    times = pd.to_datetime(["2026-11-27", "2026-11-28", "2026-11-29"])
    outputs = (OutputColumn("due", "timestamp"), OutputColumn("blob", "binary"))
    raw = pd.DataFrame({"blob": [b"a", b"b", b"c"], "due": times})
    result = predict_batch(returning(raw), batch, outputs, LABEL)
    assert result["due"].tolist() == list(times) and result["blob"].tolist() == [b"a", b"b", b"c"]


def test_a_pyarrow_table_is_matched_to_the_signature_by_name(batch: pd.DataFrame) -> None:
    """As a pandas DataFrame is: taken by position, its columns `b, a` filled outputs `a, b`."""
    outputs = (OutputColumn("a", "bigint"), OutputColumn("b", "bigint"))
    raw = pa.table({"b": [4, 5, 6], "a": [1, 2, 3]})
    result = predict_batch(returning(raw), batch, outputs, LABEL)
    assert result["a"].tolist() == [1, 2, 3] and result["b"].tolist() == [4, 5, 6]


@pytest.mark.parametrize(
    ("spark_type", "raw"),
    [
        ("int", np.array([1, 3_000_000_000, 2], dtype="int64")),
        ("int", np.array([1.0, -3e9, 2.0])),
        ("bigint", np.array([1.0, 1e19, 2.0])),
        ("bigint", np.array([1, 2**70, 2], dtype=object)),
    ],
)
def test_integers_too_large_for_the_output_type(
    batch: pd.DataFrame, spark_type: str, raw: Any
) -> None:
    """A value outside the output type's range fails the run (ScoringError) instead of wrapping
    around, or quarantining the rows as the model's fault."""
    message = scoring_error(returning(raw), batch, (OutputColumn("prediction", spark_type),))
    assert "range" in message or "too large" in message


@pytest.mark.parametrize(
    ("spark_type", "raw"),
    [
        ("double", np.array([1, 2**53 + 1, 2], dtype="int64")),
        ("float", np.array([1, 16_777_217, 2], dtype="int32")),
        ("double", np.array([1, 2**64 - 1, 2], dtype="uint64")),
        ("double", np.array([1, 2**63 - 1, 2], dtype="int64")),  # rounds past int64
        ("float", np.array([1, 2**31 - 1, 2], dtype="int32")),
        ("double", pd.array([1, 2**53 + 1, 2], dtype="Int64")),
        ("double", pd.Series([1, 2**53 + 1, 2], dtype="int64[pyarrow]")),
        ("double", pa.table({"p": pa.array([1, 2**53 + 1, None], pa.int64())})),
        ("float", np.array([1, 2**200, 2], dtype=object)),  # beyond a float's range too
    ],
)
def test_integers_a_floating_output_would_round_fail_the_run(
    batch: pd.DataFrame, spark_type: str, raw: Any
) -> None:
    """numpy rounded them without a word: 2**53 + 1 was stored as 2**53."""
    message = scoring_error(returning(raw), batch, (OutputColumn("prediction", spark_type),))
    assert f"integers too large for {spark_type} to hold exactly" in message
    exact = np.array([1, 2**53, -(2**24)], dtype="int64")  # powers of two are exact
    result = predict_batch(returning(exact), batch, (OutputColumn("p", spark_type),), LABEL)
    assert result["p"].tolist() == [1.0, 2.0**53, -(2.0**24)]
    nullable = pd.array([1, 2**24, 3], dtype="Int64")  # a pandas nullable column, as before
    result = predict_batch(returning(nullable), batch, (OutputColumn("p", spark_type),), LABEL)
    assert result["p"].tolist() == [1.0, 2.0**24, 3.0]


def test_dates_from_a_polars_frame_still_fill_a_timestamp_output(batch: pd.DataFrame) -> None:
    """polars converts its dates to times itself; through pyarrow they were dates, refused."""
    import polars as pl

    days = [date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29)]
    result = predict_batch(
        returning(pl.DataFrame({"due": days})), batch, (OutputColumn("due", "timestamp"),), LABEL
    )
    assert [t.date() for t in result["due"]] == days


@pytest.mark.parametrize("kind", ["pyarrow", "polars"])
def test_large_integers_from_an_arrow_or_polars_frame_stay_exact_beside_a_null(
    batch: pd.DataFrame, kind: str
) -> None:
    """As pandas, an int64 column holding a null became float64: 2**53 + 1 was stored as 2**53
    in the rows beside the null."""
    import polars as pl

    table = pa.table({"p": pa.array([2**53 + 1, None, 2**60 + 1], pa.int64())})
    raw = table if kind == "pyarrow" else pl.from_arrow(table)
    result = predict_batch(returning(raw), batch, (OutputColumn("p", "bigint", False),), LABEL)
    assert result["p"].iloc[0] == 2**53 + 1 and result["p"].iloc[2] == 2**60 + 1


@pytest.mark.parametrize(
    "raw",
    [np.array(["True", "False", "False"], dtype=object), np.array([1.0, 0.0, 0.0])],
    ids=["text", "floats"],
)
def test_values_other_than_booleans_in_a_boolean_output(batch: pd.DataFrame, raw: Any) -> None:
    """The text "False" raises instead of becoming True (as any non-empty string would), and so
    do floats, which only a cast would make booleans."""
    message = scoring_error(returning(raw), batch, (OutputColumn("prediction", "boolean"),))
    assert "true and false" in message


@pytest.mark.parametrize(
    "raw",
    [
        np.array([True, None, False], dtype=object),
        np.array([True, np.nan, False], dtype=object),
        pd.array([True, None, False], dtype="boolean"),
    ],
    ids=["None", "NaN", "pandas-NA"],
)
def test_nulls_in_a_boolean_output(batch: pd.DataFrame, raw: Any) -> None:
    """A missing boolean fails its row, never turned into True or False, and the others keep
    their values."""
    outputs = (OutputColumn("prediction", "boolean"),)
    result = predict_batch(returning(raw), batch, outputs, LABEL)
    assert result["prediction"].tolist() == [True, None, False]
    errors = result[SCORE_ERROR].tolist()
    assert errors[0] is None and errors[2] is None
    assert "no value (null or NaN)" in errors[1]


# --- valid rows only, and isolating the rows a model raises on ----------------------------------


def test_only_valid_rows_reach_the_model_and_the_others_get_nulls(batch: pd.DataFrame) -> None:
    seen: list[list[float]] = []

    def predict(rows: pd.DataFrame) -> Any:
        seen.append(list(rows["kwh_7d"]))
        return (rows["kwh_7d"] * 2).astype("int64").to_numpy()

    valid = pd.Series([True, False, True], index=batch.index)
    result = predict_valid_rows(FnModel(predict), batch, valid, PREDICTION, LABEL)

    assert seen == [[1.0, 9.0]]
    assert list(result.index) == [100, 101, 102]
    assert list(result["prediction"]) == [2, None, 18]
    assert list(result["_score_error"]) == [None, None, None]


def test_a_batch_without_valid_rows_never_calls_the_model(batch: pd.DataFrame) -> None:
    def predict(rows: pd.DataFrame) -> Any:
        raise AssertionError("the model was called")

    valid = pd.Series(False, index=batch.index)
    result = predict_valid_rows(FnModel(predict), batch, valid, PREDICTION, LABEL)
    assert result["prediction"].isna().all() and result["_score_error"].isna().all()


def test_rows_the_model_raises_on_are_isolated_and_the_rest_scored(batch: pd.DataFrame) -> None:
    def predict(rows: pd.DataFrame) -> Any:
        if (rows["kwh_7d"] == 5.0).any():
            raise ValueError("cannot score 5")
        return rows["kwh_7d"].astype("int64").to_numpy()

    valid = pd.Series(True, index=batch.index)
    result = predict_valid_rows(FnModel(predict), batch, valid, PREDICTION, LABEL)
    assert list(result["prediction"]) == [1, None, 9]
    assert result.loc[101, "_score_error"] == "ValueError: cannot score 5"
    assert result["_score_error"].isna().tolist() == [True, False, True]
    assert isolating_failures_dtype_ok(result)


def test_a_row_left_empty_next_to_a_row_that_raises_and_an_invalid_one() -> None:
    """Both kinds of model error in one batch, found while the batch is split: each row keeps
    its own reason; the scored rows keep exact integers; the invalid row has no error."""
    big = 2**60
    batch = pd.DataFrame({"n": [big, -1, 0, 3, big + 2]}, index=[10, 11, 12, 13, 14])

    def predict(rows: pd.DataFrame) -> Any:
        if (rows["n"] == 3).any():
            raise ValueError("cannot score 3")
        return pd.Series(rows["n"].to_numpy(), dtype=object).where(rows["n"] != 0, None)

    valid = pd.Series([True, False, True, True, True], index=batch.index)
    result = predict_valid_rows(FnModel(predict), batch, valid, PREDICTION, LABEL)
    assert list(result["prediction"]) == [big, None, None, None, big + 2]
    assert list(result["_score_error"]) == [None, None, MISSING, "ValueError: cannot score 3", None]


def isolating_failures_dtype_ok(result: pd.DataFrame) -> bool:
    """Integer predictions stay integers where scored (nulls elsewhere), never floats."""
    return all(isinstance(v, int | np.integer) for v in result["prediction"].dropna())


def test_large_integer_predictions_stay_exact_next_to_an_invalid_row() -> None:
    """Predictions above 2**53 keep every digit when the batch also holds a row not scored (its
    null must not turn the column into floats)."""
    big = 2**53 + 1
    batch = pd.DataFrame({"n": [big, 0, big + 2]}, index=[7, 8, 9])
    valid = pd.Series([True, False, True], index=batch.index)
    model = FnModel(lambda rows: rows["n"].to_numpy())
    result = predict_valid_rows(model, batch, valid, PREDICTION, LABEL)
    assert list(result["prediction"]) == [big, None, big + 2]


def aligning_by_index(rows: pd.DataFrame) -> Any:
    """Like a custom pyfunc that builds its features anew and copies a column in by index."""
    features = pd.DataFrame({"scaled": np.zeros(len(rows))})
    features["kwh"] = rows["kwh_7d"]
    return features["kwh"] * 2


def test_a_model_aligning_by_index_scores_the_valid_rows_of_a_batch(batch: pd.DataFrame) -> None:
    """The valid rows reach the model indexed 0..n-1, as pyfunc's predict gives them: a model
    that lines its features up by index keeps each row's own values (it took other rows'
    values, or NaN, when it saw the batch's own index)."""
    valid = pd.Series([True, False, True], index=batch.index)
    outputs = (OutputColumn("prediction", "double"),)
    result = predict_valid_rows(FnModel(aligning_by_index), batch, valid, outputs, LABEL)
    assert result.loc[[100, 102], "prediction"].tolist() == [2.0, 18.0]
    assert pd.isna(result.loc[101, "prediction"])


def test_a_model_aligning_by_index_scores_the_halves_of_a_failing_batch() -> None:
    """The same holds for the parts of a batch split to find the row a model raises on."""
    batch = pd.DataFrame({"kwh_7d": [1.0, 2.0, -1.0, 4.0]}, index=[10, 11, 12, 13])

    def predict(rows: pd.DataFrame) -> Any:
        if (rows["kwh_7d"] < 0).any():
            raise ValueError("negative")
        return aligning_by_index(rows)

    valid = pd.Series(True, index=batch.index)
    outputs = (OutputColumn("prediction", "double"),)
    result = predict_valid_rows(FnModel(predict), batch, valid, outputs, LABEL)
    assert result.loc[[10, 11, 13], "prediction"].tolist() == [2.0, 4.0, 8.0]
    assert result["_score_error"].notna().tolist() == [False, False, True, False]


def test_timestamp_predictions_stay_datetimes_next_to_an_invalid_row(batch: pd.DataFrame) -> None:
    """Timestamps of a batch with an unscored row stay datetime64 (NaT there): PySpark moves
    only datetime64 columns from the session's time zone, so an object column would be stored
    shifted by the session's offset in such batches and not in the others."""
    stamps = pd.to_datetime(["2026-01-01 12:00", "2026-01-02 12:00", "2026-01-03 12:00"])
    model = FnModel(lambda rows: pd.Series(stamps[: len(rows)]))
    outputs = (OutputColumn("due", "timestamp"),)
    valid = pd.Series([True, False, True], index=batch.index)
    result = predict_valid_rows(model, batch, valid, outputs, LABEL)
    assert result["due"].dtype.kind == "M"
    assert result["due"].tolist()[0] == stamps[0] and pd.isna(result["due"][101])

    def failing_middle(rows: pd.DataFrame) -> Any:
        if (rows["kwh_7d"] == 5.0).any():
            raise ValueError("cannot score 5")
        return pd.Series(stamps[: len(rows)])

    all_valid = pd.Series(True, index=batch.index)
    isolated = predict_valid_rows(FnModel(failing_middle), batch, all_valid, outputs, LABEL)
    assert isolated["due"].dtype.kind == "M"


def test_python_datetimes_beyond_pandas_years_pass_next_to_an_invalid_row(
    batch: pd.DataFrame,
) -> None:
    """A model's Python datetimes (a 9999-12-31 sentinel) stay objects in a batch that holds
    a row not scored, as in a batch without one: pandas' datetime64 ends in 2262."""
    sentinel = datetime(9999, 12, 31)
    model = FnModel(lambda rows: pd.Series([sentinel] * len(rows), dtype=object))
    outputs = (OutputColumn("valid_until", "timestamp"),)
    valid = pd.Series([True, False, True], index=batch.index)
    result = predict_valid_rows(model, batch, valid, outputs, LABEL)
    assert result["valid_until"].tolist() == [sentinel, None, sentinel]


def enforcing(dtypes: dict[str, str]) -> FnModel:
    """A model that, like pyfunc's schema enforcement, refuses a column of another dtype."""

    def predict(rows: pd.DataFrame) -> Any:
        for name, dtype in dtypes.items():
            if rows[name].dtype != dtype:
                raise TypeError(f"Can not safely convert {rows[name].dtype} to {dtype}")
        return rows["n"].to_numpy()

    return FnModel(predict)


def test_a_null_in_an_integer_input_does_not_fail_the_other_rows_of_its_batch() -> None:
    """Arrow gives pandas float64 for an integer column holding a null. The null row is invalid
    (validation quarantined it), and the valid rows reach the model as int64 again."""
    inputs = (InputColumn("n", "bigint"), InputColumn("flag", "boolean"))
    batch = pd.DataFrame({"n": [1.0, np.nan, 3.0], "flag": [True, None, False]}, index=[0, 1, 2])
    valid = pd.Series([True, False, True], index=batch.index)
    model = enforcing({"n": "int64", "flag": "bool"})
    dtypes = input_dtypes(inputs)
    assert dtypes == {"n": "int64", "flag": "bool"}

    result = predict_valid_rows(model, batch, valid, PREDICTION, LABEL, input_dtypes=dtypes)
    assert list(result["prediction"]) == [1, None, 3]
    assert result["_score_error"].isna().all()


def test_a_null_in_an_optional_integer_input_fails_only_its_own_row() -> None:
    """A valid row may hold a null in an optional integer input, which the model refuses:
    splitting the batch leaves that row in quarantine and scores the others as integers."""
    batch = pd.DataFrame({"n": [1.0, np.nan, 3.0, 4.0]})
    valid = pd.Series(True, index=batch.index)
    model = enforcing({"n": "int64"})
    result = predict_valid_rows(model, batch, valid, PREDICTION, LABEL, input_dtypes={"n": "int64"})
    assert list(result["prediction"]) == [1, None, 3, 4]
    assert result["_score_error"].notna().tolist() == [False, True, False, False]


def test_many_nulls_in_an_optional_integer_input_fail_none_of_the_other_rows() -> None:
    """Past `max_isolated` failures, bisection quarantined whole parts of a batch: with more
    null rows than that, the valid rows among them went to quarantine as model errors."""
    values = [np.nan if i % 2 else float(i) for i in range(200)]
    batch = pd.DataFrame({"n": values}, index=range(1000, 1200))
    valid = pd.Series(True, index=batch.index)
    calls: list[int] = []
    refusing = enforcing({"n": "int64"})

    def counted(rows: pd.DataFrame) -> Any:
        calls.append(len(rows))
        return refusing.predict(rows)

    result = predict_valid_rows(
        FnModel(counted), batch, valid, PREDICTION, LABEL, input_dtypes={"n": "int64"}
    )

    assert result.index.equals(batch.index)
    assert result["prediction"].tolist() == [None if i % 2 else i for i in range(200)]
    assert result["_score_error"].notna().tolist() == [bool(i % 2) for i in range(200)]
    assert calls[0] == 100  # the rows without a null, in one call


@pytest.mark.parametrize(("spark_type", "value"), [("bigint", 2**60), ("boolean", True)])
@pytest.mark.parametrize("split", ["a null input apart", "halves of a failing batch"])
def test_an_optional_output_left_null_stays_null_when_the_batch_is_split(
    spark_type: str, value: Any, split: str
) -> None:
    """A split batch's parts are put back together: a null the model gave for an optional
    output failed the run (bigint) or was stored as False (boolean)."""
    batch = pd.DataFrame({"n": [1.0, 2.0, np.nan, 4.0]})
    valid = pd.Series(True, index=batch.index)
    optional = (OutputColumn("prediction", spark_type, required=False),)
    calls: list[int] = []

    def predict(rows: pd.DataFrame) -> Any:
        calls.append(len(rows))
        if split == "halves of a failing batch" and len(rows) == len(batch):
            raise ValueError("only in parts")
        return pd.Series([value if n == 1.0 else None for n in rows["n"]], dtype=object)

    dtypes = {"n": "float64"} if split == "a null input apart" else None
    result = predict_valid_rows(
        FnModel(predict), batch, valid, optional, LABEL, input_dtypes=dtypes
    )

    assert len(calls) > 1  # the batch was scored in parts
    assert result["prediction"].tolist() == [value, None, None, None]
    assert result["_score_error"].isna().all()


def test_a_model_failing_on_an_empty_batch_is_not_split_forever() -> None:
    from lakescore.scoring import predict_isolating_failures

    def predict(rows: pd.DataFrame) -> Any:
        raise ValueError("Found array with 0 sample(s)")

    empty = pd.DataFrame({"n": pd.Series([], dtype="float64")})
    result = predict_isolating_failures(FnModel(predict), empty, PREDICTION, LABEL)
    assert len(result) == 0


@pytest.mark.parametrize(
    ("env", "folder", "label"),
    [
        ({}, "work/app-20261127-0001/3", "3"),  # standalone: the executor's working folder
        ({"SPARK_EXECUTOR_ID": "7"}, "opt/spark/work-dir", "7"),  # Kubernetes
        ({"CONTAINER_ID": "container_1_0001_01_000002"}, "c", "container_1_0001_01_000002"),
        ({}, "anywhere", "driver"),  # local mode
    ],
)
def test_executor_label_names_the_executor_on_every_cluster_manager(
    env: dict[str, str],
    folder: str,
    label: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run record's executors: before Kubernetes and YARN were read, every executor of a
    host there was counted as `host/driver`."""
    for name in ("SPARK_EXECUTOR_ID", "CONTAINER_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path / folder)
    assert executor_label() == f"{socket.gethostname()}/{label}"


def test_a_batch_stops_being_split_after_32_rows_the_model_raised_on() -> None:
    """The README's cap: a model raising on most rows is not called once per row. Past 32
    isolated rows, each still-failing part goes to quarantine whole, marked so."""
    from lakescore.scoring import predict_isolating_failures

    batch = pd.DataFrame({"n": [float(i) for i in range(1000)]})
    calls: list[int] = []

    def mostly_failing(rows: pd.DataFrame) -> Any:
        calls.append(len(rows))
        if (rows["n"] % 5 != 0).any():  # four rows in five
            raise ValueError("cannot score")
        return rows["n"].astype("int64").to_numpy()

    result = predict_isolating_failures(FnModel(mostly_failing), batch, PREDICTION, LABEL)

    errors = result["_score_error"]
    one_by_one = errors.eq("ValueError: cannot score")
    assert one_by_one.sum() == 32  # isolated row by row, then no more
    whole = errors.str.endswith("(batch not split further: too many failures)", na=False)
    assert whole.any() and (one_by_one | whole | errors.isna()).all()
    assert result.loc[errors.isna(), "prediction"].tolist() == [
        n for n in range(1000) if errors[n] is None
    ]
    assert len(calls) < 32 * 2 * 10 + 50  # about 2·log2(n) calls per isolated row, not 1000
