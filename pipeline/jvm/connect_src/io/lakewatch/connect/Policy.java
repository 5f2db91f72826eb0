package io.lakewatch.connect;

/**
 * Decides whether one Spark Connect request may run. Implemented in Python
 * ({@code pipeline.sql.connect_policy}) and reached through py4j's callback server, so the
 * endpoint applies the same rules as the app.
 */
public interface Policy {
    /**
     * @param method the gRPC method (ExecutePlan, AnalyzePlan, Config, ...)
     * @param facts  JSON: message types, SQL texts, expression strings, function and table names
     * @return null to let the request run, else why it is refused (shown to the client)
     */
    String refusal(String method, String facts);
}
