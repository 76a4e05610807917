package klr;

/** One event from /invocation/next and the headers that come with it (null when absent). */
final class Invocation {
    final String requestId;
    final long deadlineMs;
    final String functionArn;
    final String traceId;
    final String clientContext;
    final String cognitoIdentity;
    final String tenantId;
    final byte[] event;

    Invocation(String requestId, String deadlineMs, String functionArn, String traceId,
               String clientContext, String cognitoIdentity, String tenantId, byte[] event) {
        this.requestId = requestId;
        this.deadlineMs = deadlineMs == null ? 0 : Long.parseLong(deadlineMs.trim());
        this.functionArn = functionArn;
        this.traceId = traceId;
        this.clientContext = clientContext;
        this.cognitoIdentity = cognitoIdentity;
        this.tenantId = tenantId;
        this.event = event;
    }
}
