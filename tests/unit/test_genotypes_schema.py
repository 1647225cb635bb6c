"""Tests of the genotype-table registry in genoflow.genotypes: the schemas derived from it and `validate`."""

from __future__ import annotations

import pyarrow as pa
import pytest

from genoflow.errors import InputError
from genoflow.genotypes import GENOTYPE_COLUMNS, GENOTYPE_SCHEMA, GENOTYPE_SCHEMA_DDL, validate


def test_registry__spark_ddl_and_arrow_schema_name_the_same_columns_in_order():
    ddl_names = [part.split()[0] for part in GENOTYPE_SCHEMA_DDL.split(", ")]
    assert ddl_names == GENOTYPE_SCHEMA.names == [column.name for column in GENOTYPE_COLUMNS]
    assert all(column.meaning for column in GENOTYPE_COLUMNS)


def test_validate__accepts_the_schema_and_tables_written_before_the_optional_columns():
    validate(GENOTYPE_SCHEMA)
    validate(pa.schema([field for field in GENOTYPE_SCHEMA if field.name not in ("mean_dp", "mean_gq")]))
    validate(GENOTYPE_SCHEMA.append(pa.field("extra", pa.int8())))  # other columns are allowed


def test_validate__names_the_table_each_missing_column_and_each_wrong_type():
    fields = [field for field in GENOTYPE_SCHEMA if field.name not in ("dosages", "ref")]
    schema = pa.schema([pa.field("pos", pa.int32()) if field.name == "pos" else field for field in fields])
    with pytest.raises(InputError) as caught:
        validate(schema.empty_table(), source="run/genotypes")
    message = str(caught.value)
    assert message.startswith("run/genotypes: ")
    assert "missing column(s) ref, dosages" in message
    assert "'pos' is int32, expected int64" in message


def test_validate__reads_a_spark_dataframes_schema(spark):
    validate(spark.createDataFrame([], GENOTYPE_SCHEMA_DDL))
    wrong = spark.createDataFrame([], GENOTYPE_SCHEMA_DDL.replace("pos long", "pos int"))
    with pytest.raises(InputError, match="'pos' is int, expected bigint"):
        validate(wrong)
