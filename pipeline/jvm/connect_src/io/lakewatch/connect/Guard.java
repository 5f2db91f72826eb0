package io.lakewatch.connect;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.sparkproject.connect.protobuf.Descriptors.FieldDescriptor;
import org.sparkproject.connect.protobuf.Message;

/**
 * Holds the installed {@link Policy} and turns a request message into the facts it decides on.
 * Fails closed: with no policy installed (the processor is still starting) or a policy that
 * throws, every request is refused.
 */
public final class Guard {
    private static volatile Policy policy;
    private static final int MAX_DEPTH = 1000;

    private Guard() {}

    public static void install(Policy p) { policy = p; }

    public static void uninstall() { policy = null; }

    public static boolean installed() { return policy != null; }

    /** Null when {@code request} may run, else the refusal message. */
    public static String check(String method, Object request) {
        Policy p = policy;
        if (p == null) {
            return "refused: the SQL endpoint is not ready (its read-only guard is not installed yet)";
        }
        String facts;
        try {
            facts = facts(request);
        } catch (RuntimeException e) {
            return "refused: " + e.getMessage();
        }
        try {
            return p.refusal(method, facts);
        } catch (RuntimeException e) {
            return "refused: the read-only guard could not check the request (" + e + ")";
        }
    }

    static String facts(Object request) {
        Set<String> types = new LinkedHashSet<>();
        List<String> sql = new ArrayList<>();
        List<String> expressions = new ArrayList<>();
        Set<String> functions = new LinkedHashSet<>();
        Set<String> tables = new LinkedHashSet<>();
        if (request instanceof Message) {
            walk((Message) request, 0, types, sql, expressions, functions, tables);
        } else if (request != null) {
            types.add("java:" + request.getClass().getName());
        }
        StringBuilder b = new StringBuilder("{");
        array(b, "types", types).append(',');
        array(b, "sql", sql).append(',');
        array(b, "expressions", expressions).append(',');
        array(b, "functions", functions).append(',');
        array(b, "tables", tables);
        return b.append('}').toString();
    }

    private static void walk(Message m, int depth, Set<String> types, List<String> sql,
                             List<String> expressions, Set<String> functions, Set<String> tables) {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException("the request is nested more than " + MAX_DEPTH + " levels deep");
        }
        String type = m.getDescriptorForType().getFullName();
        if (!m.getDescriptorForType().getOptions().getMapEntry()) {
            types.add(type);
        }
        switch (type) {
            case "spark.connect.SQL": sql.add(string(m, "query")); break;
            case "spark.connect.SqlCommand": {
                String text = string(m, "sql");
                if (!text.isEmpty()) sql.add(text);
                break;
            }
            case "spark.connect.Expression.ExpressionString": expressions.add(string(m, "expression")); break;
            case "spark.connect.Expression.UnresolvedFunction": functions.add(string(m, "function_name")); break;
            case "spark.connect.CallFunction": functions.add(string(m, "function_name")); break;
            case "spark.connect.Read.NamedTable": tables.add(string(m, "unparsed_identifier")); break;
            default: break;
        }
        for (Map.Entry<FieldDescriptor, Object> e : m.getAllFields().entrySet()) {
            FieldDescriptor fd = e.getKey();
            if (fd.getJavaType() != FieldDescriptor.JavaType.MESSAGE) continue;
            if (fd.isRepeated()) {
                for (Object item : (List<?>) e.getValue()) {
                    walk((Message) item, depth + 1, types, sql, expressions, functions, tables);
                }
            } else {
                walk((Message) e.getValue(), depth + 1, types, sql, expressions, functions, tables);
            }
        }
    }

    private static String string(Message m, String field) {
        FieldDescriptor fd = m.getDescriptorForType().findFieldByName(field);
        Object v = fd == null ? null : m.getField(fd);
        return v == null ? "" : v.toString();
    }

    private static StringBuilder array(StringBuilder b, String key, Iterable<String> items) {
        b.append('"').append(key).append("\":[");
        boolean first = true;
        for (String s : items) {
            if (!first) b.append(',');
            first = false;
            quote(b, s);
        }
        return b.append(']');
    }

    private static void quote(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        b.append('"');
    }
}
