"""What the processor's Spark Connect endpoint lets a client do: the app's read-only rules,
applied on the server to every request whoever sends it.

The JVM side (``pipeline.jvm.connect_guard``) reports each request's facts; this policy
refuses anything outside an allow-list of message types (so DataFrame-API writes, reads by
path, user code, session changes and new API surface are refused by default), checks every
SQL text with :func:`pipeline.sql.safety.check_statement` on the processor's own parser - the
same decision as in the app - and checks expression strings, function and table names with
the same rules.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pipeline.sql.errors import RefusedError, SqlError
from pipeline.sql.safety import (
    FORBIDDEN_FUNCTIONS,
    check_statement,
    file_query_refusal,
    inspect_plan,
)

log = logging.getLogger(__name__)

_P = "spark.connect."

#: gRPC methods a client may call; AddArtifacts (uploads code), CloneSession and the rest are
#: refused.
METHODS = frozenset({
    "ExecutePlan", "AnalyzePlan", "Config", "ReattachExecute", "ReleaseExecute",
    "ReleaseSession", "Interrupt", "FetchErrorDetails",
})

_READ_TYPES = (
    # requests and their parts
    "ExecutePlanRequest", "ExecutePlanRequest.RequestOption", "ReattachOptions",
    "ResultChunkingOptions", "UserContext", "Plan", "Command", "SqlCommand",
    "AnalyzePlanRequest", "AnalyzePlanRequest.Schema", "AnalyzePlanRequest.Explain",
    "AnalyzePlanRequest.TreeString", "AnalyzePlanRequest.IsLocal",
    "AnalyzePlanRequest.IsStreaming", "AnalyzePlanRequest.SparkVersion",
    "AnalyzePlanRequest.DDLParse", "AnalyzePlanRequest.SameSemantics",
    "AnalyzePlanRequest.SemanticHash", "AnalyzePlanRequest.GetStorageLevel",
    "AnalyzePlanRequest.JsonToDDL",
    "ConfigRequest", "ConfigRequest.Operation", "ConfigRequest.Get",
    "ConfigRequest.GetWithDefault", "ConfigRequest.GetOption", "ConfigRequest.GetAll",
    "ConfigRequest.IsModifiable", "KeyValue",
    "ReattachExecuteRequest", "ReleaseExecuteRequest", "ReleaseExecuteRequest.ReleaseAll",
    "ReleaseExecuteRequest.ReleaseUntil", "ReleaseSessionRequest", "InterruptRequest",
    "FetchErrorDetailsRequest",
    # relations that read registered tables or compute
    "Relation", "RelationCommon", "Origin", "PythonOrigin", "JvmOrigin", "StackTraceElement",
    "SQL", "Read", "Read.NamedTable", "Project", "Filter", "Join", "Join.JoinDataType",
    "SetOperation", "Sort", "Limit", "Offset", "Tail", "Aggregate", "Aggregate.Pivot",
    "Aggregate.GroupingSets", "LocalRelation", "Sample", "Deduplicate", "Range",
    "SubqueryAlias", "Repartition", "RepartitionByExpression", "ToDF", "WithColumnsRenamed",
    "WithColumnsRenamed.Rename", "ShowString", "HtmlString", "Drop", "WithColumns", "Hint",
    "Unpivot", "Unpivot.Values", "ToSchema", "WithRelations", "Transpose", "AsOfJoin",
    "LateralJoin", "NAFill", "NADrop", "NAReplace", "NAReplace.Replacement", "StatSummary",
    "StatCrosstab", "StatDescribe", "StatCov", "StatCorr", "StatApproxQuantile",
    "StatFreqItems", "StatSampleBy", "StatSampleBy.Fraction", "CollectMetrics",
    # catalog lookups
    "Catalog", "CurrentDatabase", "ListDatabases", "ListTables", "ListFunctions",
    "ListColumns", "GetDatabase", "GetTable", "GetFunction", "DatabaseExists", "TableExists",
    "FunctionExists", "IsCached", "CurrentCatalog", "ListCatalogs", "ListViews",
    "ListPartitions", "GetTableProperties", "GetCreateTableString",
    # expressions and types (user code is not among them)
    "Expression", "ExpressionCommon", "Expression.Literal", "Expression.Literal.Decimal",
    "Expression.Literal.CalendarInterval", "Expression.Literal.Array",
    "Expression.Literal.Map", "Expression.Literal.Struct",
    "Expression.Literal.SpecializedArray", "Expression.Literal.Time", "Bools", "Ints",
    "Longs", "Floats", "Doubles", "Strings", "Expression.UnresolvedAttribute",
    "Expression.UnresolvedFunction", "Expression.ExpressionString",
    "Expression.UnresolvedStar", "Expression.Alias", "Expression.Cast",
    "Expression.UnresolvedRegex", "Expression.SortOrder", "Expression.LambdaFunction",
    "Expression.Window", "Expression.Window.WindowFrame",
    "Expression.Window.WindowFrame.FrameBoundary", "Expression.UnresolvedExtractValue",
    "Expression.UpdateFields", "Expression.UnresolvedNamedLambdaVariable", "CallFunction",
    "NamedArgumentExpression", "SubqueryExpression", "SubqueryExpression.TableArgOptions",
    "DataType",
)
_TYPE_PREFIXES = (_P + "DataType.",)  # DataType.Integer, DataType.Struct, ... (casts, schemas)
ALLOWED_TYPES = frozenset(_P + t for t in _READ_TYPES)

#: Message types refused with a specific reason (others outside the allow-list: generic).
REFUSED_TYPES = {
    "Read.DataSource": ("reading files by path or a data source (spark.read…)",
                        "only the registered tables may be read"),
    "WriteOperation": ("a DataFrame write (df.write…)", "the endpoint is read-only"),
    "WriteOperationV2": ("a DataFrame write (df.writeTo…)", "the endpoint is read-only"),
    "WriteStreamOperationStart": ("a streaming write", "the endpoint is read-only"),
    "MergeIntoTableCommand": ("MERGE", "the endpoint is read-only"),
    "CreateDataFrameViewCommand": ("registering a view", "the endpoint is read-only"),
    "CommonInlineUserDefinedFunction": ("a user-defined function", "it runs client code"),
    "CommonInlineUserDefinedTableFunction": ("a user-defined table function",
                                             "it runs client code"),
    "CommonInlineUserDefinedDataSource": ("a user-defined data source", "it runs client code"),
    "PythonUDF": ("a Python function", "it runs client code"),
    "ScalarScalaUDF": ("a Scala function", "it runs client code"),
    "JavaUDF": ("a Java function", "it runs client code"),
    "MapPartitions": ("mapInPandas / mapInArrow", "it runs client code"),
    "GroupMap": ("applyInPandas", "it runs client code"),
    "CoGroupMap": ("cogroup applyInPandas", "it runs client code"),
    "ApplyInPandasWithState": ("applyInPandasWithState", "it runs client code"),
    "TypedAggregateExpression": ("a typed aggregate", "it runs client code"),
    "ConfigRequest.Set": ("setting a session configuration", "it changes the Spark session"),
    "ConfigRequest.Unset": ("unsetting a session configuration", "it changes the Spark session"),
    "AnalyzePlanRequest.Persist": ("persist/cache", "it pins data in the processor's memory"),
    "AnalyzePlanRequest.Unpersist": ("unpersist", "it changes the processor's cache"),
    "CheckpointCommand": ("checkpoint", "it writes files"),
}

_METHOD_REASONS = {
    "AddArtifacts": "it loads code (jars, classes, Python files) into the processor",
    "ArtifactStatus": "artifacts are not accepted",
    "CloneSession": "sessions are not cloned",
}


def _refusal(label: str, why: str) -> str:
    return f"refused: {label} is not allowed through the pipeline's SQL endpoint: {why}."


class ConnectPolicy:
    """The policy object the JVM guard calls (``io.lakewatch.connect.Policy``) through py4j's
    callback server. ``spark`` is the processor's own session: its parser (Delta's extension
    included) is the one the endpoint's sessions use."""

    def __init__(self, spark: Any, allow_writes: bool = False) -> None:
        self._spark = spark
        self._jvm = spark.sparkContext._jvm
        self._allow_writes = allow_writes

    def refusal(self, method: str, facts: str) -> str | None:
        try:
            self.check(str(method), json.loads(str(facts)))
        except RefusedError as exc:
            return str(exc.message)
        except SqlError as exc:
            return f"refused: the statement could not be checked: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - fail closed, say why
            if "ParseException" in type(exc).__name__ or "ParseException" in str(exc)[:300]:
                return None  # the same parser fails it again, with the position the user needs
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.debug("SQL endpoint guard", exc_info=True)
            return f"refused: the statement could not be checked: {first}"
        return None

    def check(self, method: str, facts: dict[str, list[str]]) -> None:
        """Raise RefusedError unless the request may run."""
        if method not in METHODS:
            why = _METHOD_REASONS.get(method, "the endpoint serves read-only queries")
            raise RefusedError(_refusal(f"the call {method}", why))
        for full in facts.get("types", []):
            if full in ALLOWED_TYPES or full.startswith(_TYPE_PREFIXES):
                continue
            short = full.removeprefix(_P)
            label, why = REFUSED_TYPES.get(short, (short, "it is not a read-only query"))
            raise RefusedError(_refusal(label, why))
        for name in facts.get("functions", []):
            if name.lower() in FORBIDDEN_FUNCTIONS:
                raise RefusedError(_refusal(f"{name.lower()}()", "it calls arbitrary Java methods"))
        parser = self._spark._jsparkSession.sessionState().sqlParser()
        for ident in facts.get("tables", []):
            parts = [str(p) for p in _seq(parser.parseMultipartIdentifier(ident))]
            refused = file_query_refusal(parts)
            if refused is not None:
                raise refused
        for text in facts.get("expressions", []):
            self._check_expression(parser, text)
        for sql in facts.get("sql", []):
            check_statement(self._spark, sql, self._allow_writes)

    def _check_expression(self, parser: Any, text: str) -> None:
        """An expression string (selectExpr, F.expr) as a filter over one row: its functions
        and subqueries are walked like a statement's."""
        logical = self._jvm.org.apache.spark.sql.catalyst.plans.logical
        plan = logical.Filter(parser.parseExpression(text), logical.OneRowRelation())
        inspect_plan(plan, self._jvm, None)

    class Java:
        implements = ["io.lakewatch.connect.Policy"]


def _seq(seq: Any) -> list[Any]:
    it = seq.iterator()
    out = []
    while it.hasNext():
        out.append(it.next())
    return out
