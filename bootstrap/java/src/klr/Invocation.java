package klr;

import java.util.Map;

/** 2. Runtime API client: one event from nextInvocation, and the headers that came with it
 *  (null when absent). */
final class Invocation {
    final String requestId;
    final long deadlineMs;
    final String functionArn;
    final String traceId;
    final String clientContext;
    final String cognitoIdentity;
    final String tenantId;
    final byte[] event;

    Invocation(Map<String, String> headers, byte[] event) {
        this.requestId = headers.get("Lambda-Runtime-Aws-Request-Id");
        String deadline = headers.get("Lambda-Runtime-Deadline-Ms");
        this.deadlineMs = deadline == null ? 0 : Long.parseLong(deadline.trim());
        this.functionArn = headers.get("Lambda-Runtime-Invoked-Function-Arn");
        this.traceId = headers.get("Lambda-Runtime-Trace-Id");
        this.clientContext = headers.get("Lambda-Runtime-Client-Context");
        this.cognitoIdentity = headers.get("Lambda-Runtime-Cognito-Identity");
        this.tenantId = headers.get("Lambda-Runtime-Aws-Tenant-Id");
        this.event = event;
    }
}
