"""Decide, on Spark's parsed logical plan, whether a statement may run from the app.

The decision never looks at the first keyword: the statement is parsed by the session's own
parser (Delta's extension included) and every plan node, CTE body, expression subquery,
EXPLAIN body and time-travel relation is inspected. Reads run; writes run only with
``sql.allow_writes`` and only into tables the pipeline does not write; statements that load
code, change the shared session or read files by path never run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.schemas import PIPELINE_TABLES
from pipeline.sql.errors import RefusedError

_LOGICAL = "org.apache.spark.sql.catalyst.plans.logical."
_MAX_NODES = 20_000

#: Read-only commands that may run (plan class simple names).
READ_ONLY_COMMANDS = frozenset({
    "DescribeRelation", "DescribeColumn", "DescribeFunction", "DescribeNamespace",
    "DescribeQuery", "ShowTables", "ShowTablesExtended", "ShowViews", "ShowColumns",
    "ShowFunctions", "ShowNamespaces", "ShowPartitions", "ShowTableProperties",
    "ShowCreateTable", "ShowCatalogs", "ShowCurrentNamespaceCommand", "ExplainCommand",
    "DescribeDeltaDetailCommand", "DescribeDeltaHistory", "DescribeDeltaHistoryCommand",
})

#: Leaf nodes a read may draw rows (or names) from.
ALLOWED_LEAVES = frozenset({
    "UnresolvedRelation", "OneRowRelation", "LocalRelation", "UnresolvedInlineTable",
    "UnresolvedTableValuedFunction", "Range", "RelationTimeTravel", "TimeTravel",
    "UnresolvedTableOrView",
    "UnresolvedTable", "UnresolvedView", "UnresolvedIdentifier", "UnresolvedNamespace",
    "CurrentNamespace", "UnresolvedFunctionName", "ResolvedIdentifier",
    "UnresolvedCTERelationRef", "CTERelationRef",
})

#: Table-valued functions that only compute rows (no path or session access).
ALLOWED_TVFS = frozenset({
    "range", "explode", "explode_outer", "inline", "inline_outer", "posexplode",
    "posexplode_outer", "json_tuple", "stack", "sql_keywords", "collations",
    "variant_explode", "variant_explode_outer", "table_changes",
})

#: Functions that call arbitrary JVM methods.
FORBIDDEN_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect"})

#: Data source names that make ``fmt.`path``` a direct file query.
FILE_FORMATS = frozenset({
    "json", "parquet", "delta", "csv", "orc", "text", "avro", "binaryfile", "xml", "jdbc",
    "hive", "libsvm", "image", "kafka",
})

#: Statements never run from the app, whatever ``allow_writes`` says: class -> (label, why).
NEVER = {
    "SetCommand": ("SET", "it changes the shared Spark session's configuration"),
    "ResetCommand": ("RESET", "it changes the shared Spark session's configuration"),
    "SetCatalogAndNamespace": ("USE", "it changes the shared Spark session's namespace"),
    "AddJarsCommand": ("ADD JAR", "it loads code into the shared Spark session"),
    "AddFilesCommand": ("ADD FILE", "it ships files into the shared Spark session"),
    "AddArchivesCommand": ("ADD ARCHIVE", "it ships files into the shared Spark session"),
    "CreateFunction": ("CREATE FUNCTION", "it registers code in the shared Spark session"),
    "CreateUserDefinedFunction": ("CREATE FUNCTION", "it registers code in the session"),
    "DropFunction": ("DROP FUNCTION", "it changes the shared Spark session's functions"),
    "ScriptTransformation": ("TRANSFORM … USING", "it runs an external program"),
    "UnresolvedExecuteImmediate": ("EXECUTE IMMEDIATE", "its statement text is dynamic"),
    "ExecuteImmediateQuery": ("EXECUTE IMMEDIATE", "its statement text is dynamic"),
    "CreateVariable": ("DECLARE VARIABLE", "it changes the shared Spark session"),
    "SetVariable": ("SET VARIABLE", "it changes the shared Spark session"),
    "DropVariable": ("DROP VARIABLE", "it changes the shared Spark session"),
    "CacheTable": ("CACHE TABLE", "it pins data in the shared Spark session's memory"),
    "CacheTableAsSelect": ("CACHE TABLE", "it pins data in the shared Spark session's memory"),
    "UncacheTable": ("UNCACHE TABLE", "it changes the shared Spark session's cache"),
    "ClearCacheCommand": ("CLEAR CACHE", "it changes the shared Spark session's cache"),
    "Call": ("CALL", "stored procedures may write"),
    "ConvertToDeltaCommand": ("CONVERT TO DELTA", "it rewrites files by path"),
    "PlanWithUnresolvedIdentifier": ("IDENTIFIER()", "a computed table name cannot be checked"),
    "CreateNamespace": ("CREATE DATABASE", "namespaces are managed by the pipeline"),
    "DropNamespace": ("DROP DATABASE", "it could drop the pipeline's tables"),
    "SetNamespaceProperties": ("ALTER DATABASE", "namespaces are managed by the pipeline"),
    "SetNamespaceLocation": ("ALTER DATABASE", "namespaces are managed by the pipeline"),
}

#: Write statements (run only with allow_writes, never into a pipeline table): class -> label.
WRITES = {
    "DropTable": "DROP", "DropView": "DROP", "DropTableCommand": "DROP",
    "DeleteFromTable": "DELETE", "DeleteFromStatement": "DELETE",
    "InsertIntoStatement": "INSERT", "InsertIntoDir": "INSERT OVERWRITE DIRECTORY",
    "UpdateTable": "UPDATE", "MergeIntoTable": "MERGE",
    "TruncateTable": "TRUNCATE", "TruncatePartition": "TRUNCATE",
    "CreateTable": "CREATE", "CreateTableAsSelect": "CREATE", "CreateView": "CREATE",
    "CreateViewCommand": "CREATE", "CreateTableLikeCommand": "CREATE",
    "ReplaceTable": "CREATE OR REPLACE", "ReplaceTableAsSelect": "CREATE OR REPLACE",
    "VacuumTableCommand": "VACUUM", "OptimizeTableCommand": "OPTIMIZE",
    "RestoreTableStatement": "RESTORE", "LoadData": "LOAD DATA", "RepairTable": "MSCK REPAIR",
    "RenameTable": "ALTER", "CommentOnTable": "COMMENT ON", "AlterViewAs": "ALTER",
    "CloneTableStatement": "CLONE", "DeltaReorgTable": "REORG", "DeltaGenerateCommand":
    "GENERATE", "RefreshTable": "REFRESH",
}

#: Fields of a write node that hold its source query, not its target.
_SOURCE_FIELDS = frozenset({"query", "sourceTable", "source", "plan", "logicalPlan"})


def is_protected(table: str) -> bool:
    """True for tables the app never writes: the pipeline's own and ``analytics_*``."""
    name = table.rsplit(".", 1)[-1].strip("`").lower()
    return name in PIPELINE_TABLES or name.startswith("analytics_")


@dataclass
class Verdict:
    """What a statement does, as read from its plan."""

    statement: str  # top-level plan class
    writes: list[str] = field(default_factory=list)  # labels of write nodes found
    targets: list[str] = field(default_factory=list)  # tables those writes touch
    relations: list[str] = field(default_factory=list)  # tables read

    @property
    def is_read_only(self) -> bool:
        return not self.writes


def _name(obj: Any) -> str:
    return str(obj.getClass().getSimpleName()).rstrip("$")


def _seq(seq: Any) -> list[Any]:
    it = seq.iterator()
    out = []
    while it.hasNext():
        out.append(it.next())
    return out


class _Inspector:
    def __init__(self, jvm: Any) -> None:
        cls = jvm.java.lang.Class
        self._plan_cls = cls.forName(_LOGICAL + "LogicalPlan")
        self._command_cls = cls.forName(_LOGICAL + "Command")
        try:
            self._parsed_cls = cls.forName(_LOGICAL + "ParsedStatement")
        except Exception:  # noqa: BLE001 - absent in some Spark builds
            self._parsed_cls = None
        try:
            self._alter_cls = cls.forName(_LOGICAL + "AlterTableCommand")
        except Exception:  # noqa: BLE001
            self._alter_cls = None

    def is_plan(self, obj: Any) -> bool:
        return hasattr(obj, "getClass") and bool(self._plan_cls.isInstance(obj))

    def is_command(self, node: Any, name: str) -> bool:
        if name.endswith(("Command", "Statement")) or self._command_cls.isInstance(node):
            return True
        return bool(self._parsed_cls is not None and self._parsed_cls.isInstance(node))

    def is_alter(self, node: Any) -> bool:
        return bool(self._alter_cls is not None and self._alter_cls.isInstance(node))


def relation_name(node: Any) -> list[str]:
    """Name parts of an unresolved relation/table/identifier node ([] when it has none)."""
    for attr in ("multipartIdentifier", "nameParts"):
        if hasattr(node, attr):
            try:
                return [str(p) for p in _seq(getattr(node, attr)())]
            except Exception:  # noqa: BLE001, S112 - try the next accessor
                continue
    return []


def _inner_plans(node: Any, name: str) -> list[Any]:
    """Plans held outside ``children``: CTE bodies, EXPLAIN's plan, subqueries, time travel."""
    plans = []
    for getter in ("innerChildren", "subqueries"):
        try:
            plans.extend(_seq(getattr(node, getter)()))
        except Exception:  # noqa: BLE001, S112 - not every node has them
            continue
    if name in ("RelationTimeTravel", "TimeTravel"):
        plans.append(node.relation())
    if name == "ExplainCommand":
        plans.append(node.logicalPlan())
    return plans


def _refuse(label: str, why: str) -> RefusedError:
    return RefusedError(f"refused: {label} is not allowed from the SQL workbench: {why}.")


def file_query_refusal(parts: list[str]) -> RefusedError | None:
    """The refusal for a relation name that is a direct file query (``parquet.`/path```)."""
    if len(parts) >= 2 and (parts[-2].lower() in FILE_FORMATS or "/" in parts[-1]):
        return _refuse(f"a direct file query ({parts[-2]}.`{parts[-1]}`)",
                       "only the registered tables may be read")
    return None


def inspect_plan(plan: Any, jvm: Any, sql: str | None = None) -> Verdict:
    """Walk a parsed plan; raise RefusedError for anything never allowed; report writes.

    Expressions are walked (for reflect() & co.) only when the statement's text could name
    such a function: a call needs its name spelled out, or an IDENTIFIER() clause.
    """
    insp = _Inspector(jvm)
    verdict = Verdict(statement=_name(plan))
    lowered = sql.lower() if sql is not None else None
    check_functions = lowered is None or any(
        word in lowered for word in (*FORBIDDEN_FUNCTIONS, "identifier")
    )
    stack = [plan]
    visited = 0
    while stack:
        node = stack.pop()
        visited += 1
        if visited > _MAX_NODES:
            raise RefusedError(f"refused: the statement has more than {_MAX_NODES} plan nodes.")
        name = _name(node)
        if name in NEVER:
            raise _refuse(*NEVER[name])
        children = _seq(node.children())
        if name in WRITES or (name not in READ_ONLY_COMMANDS and insp.is_command(node, name)):
            label = WRITES.get(name) or ("ALTER" if insp.is_alter(node) else name)
            verdict.writes.append(label)
            verdict.targets.extend(_write_targets(node, name, insp))
        if name == "UnresolvedRelation":
            parts = relation_name(node)
            refused = file_query_refusal(parts)
            if refused is not None:
                raise refused
            verdict.relations.append(".".join(parts))
        elif name == "UnresolvedTableValuedFunction":
            fn = [str(p) for p in _seq(node.name())]
            if fn[-1].lower() not in ALLOWED_TVFS:
                raise _refuse(f"the table function {fn[-1]}()", "it is not a known pure function")
        elif not children and name not in ALLOWED_LEAVES and not insp.is_command(node, name):
            raise _refuse(f"reading from {name}", "only the registered tables may be read")
        if check_functions:
            _check_expressions(node)
        stack.extend(children)
        stack.extend(p for p in _inner_plans(node, name) if insp.is_plan(p))
    return verdict


def _check_expressions(node: Any) -> None:
    try:
        exprs = _seq(node.expressions())
    except Exception:  # noqa: BLE001 - nodes without expressions
        return
    while exprs:
        expr = exprs.pop()
        ename = _name(expr)
        if ename == "UnresolvedFunction":
            fn = str(_seq(expr.nameParts())[-1]).lower()
            if fn in FORBIDDEN_FUNCTIONS:
                raise _refuse(f"{fn}()", "it calls arbitrary Java methods")
        elif ename == "ExpressionWithUnresolvedIdentifier":
            raise _refuse("IDENTIFIER()", "a computed function name cannot be checked")
        exprs.extend(_seq(expr.children()))


def _write_targets(node: Any, name: str, insp: _Inspector) -> list[str]:
    """Tables a write node writes: identifiers in its fields other than its source query."""
    targets: list[str] = []
    fields: list[Any] = []
    arity = int(node.productArity())
    for i in range(arity):
        field_name = str(node.productElementName(i))
        if field_name in _SOURCE_FIELDS:
            continue
        value = node.productElement(i)
        if name == "RenameTable" and field_name == "newName":
            targets.append(".".join(str(p) for p in _seq(value)))
        elif insp.is_plan(value):
            fields.append(value)
    while fields:
        sub = fields.pop()
        sub_name = _name(sub)
        parts = relation_name(sub)
        if parts:
            targets.append(".".join(parts))
        if sub_name in ("RelationTimeTravel", "TimeTravel"):
            fields.append(sub.relation())
        fields.extend(_seq(sub.children()))
    return targets


def check_verdict(verdict: Verdict, allow_writes: bool) -> None:
    """Raise RefusedError unless the verdict may run under the settings."""
    if verdict.is_read_only:
        return
    label = verdict.writes[0]
    if not allow_writes:
        raise RefusedError(
            f"refused: {label} statements are not allowed: the SQL workbench is read-only "
            "(set sql.allow_writes = true to write to your own tables)."
        )
    if not verdict.targets:
        raise RefusedError(f"refused: {label}: cannot tell which table it writes.")
    for target in verdict.targets:
        if is_protected(target):
            raise RefusedError(
                f"refused: {label} on {target!r}: the pipeline's tables are written only by "
                "the pipeline."
            )


def check_statement(spark: Any, sql: str, allow_writes: bool = False) -> Verdict:
    """Parse ``sql`` with the session's parser and apply the rules; return the verdict.

    Raises RefusedError (not allowed) or lets Spark's ParseException through.
    """
    jss = spark._jsparkSession
    plan = jss.sessionState().sqlParser().parsePlan(sql)
    verdict = inspect_plan(plan, spark.sparkContext._jvm, sql)
    check_verdict(verdict, allow_writes)
    return verdict
