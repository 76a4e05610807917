package klr;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;

/** The Lambda Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API; keep-alive connections are
 *  reused by HttpURLConnection. If the server is gone the process exits: the server reports the
 *  lost runtime itself. */
final class RuntimeApi {
    private static final String ERROR_CONTENT_TYPE = "application/vnd.aws.lambda.error+json";

    private final String base;

    RuntimeApi(String address) {
        this.base = "http://" + address + "/2018-06-01/runtime";
    }

    /** Blocks until the server has an event. */
    Invocation next() {
        try {
            HttpURLConnection connection = open("/invocation/next");
            int status = connection.getResponseCode();
            if (status != 200) {
                System.err.println("bootstrap: next invocation failed with HTTP " + status);
                System.exit(1);
            }
            return new Invocation(
                    connection.getHeaderField("Lambda-Runtime-Aws-Request-Id"),
                    connection.getHeaderField("Lambda-Runtime-Deadline-Ms"),
                    connection.getHeaderField("Lambda-Runtime-Invoked-Function-Arn"),
                    connection.getHeaderField("Lambda-Runtime-Trace-Id"),
                    connection.getHeaderField("Lambda-Runtime-Client-Context"),
                    connection.getHeaderField("Lambda-Runtime-Cognito-Identity"),
                    connection.getHeaderField("Lambda-Runtime-Aws-Tenant-Id"),
                    readAll(connection.getInputStream()));
        } catch (IOException e) {
            throw serverGone(e);
        }
    }

    void postResponse(String requestId, byte[] result) {
        post("/invocation/" + requestId + "/response", result, "application/json", null);
    }

    void postError(String requestId, Fault fault) {
        post("/invocation/" + requestId + "/error", fault.toJson(), ERROR_CONTENT_TYPE, fault.header);
    }

    void postInitError(Fault fault) {
        post("/init/error", fault.toJson(), ERROR_CONTENT_TYPE, fault.header);
    }

    /** A refused result (stale id, too large) is settled by the server: the caller carries on. */
    private void post(String path, byte[] body, String contentType, String errorType) {
        try {
            HttpURLConnection connection = open(path);
            connection.setRequestMethod("POST");
            connection.setRequestProperty("Content-Type", contentType);
            if (errorType != null) {
                connection.setRequestProperty("Lambda-Runtime-Function-Error-Type", errorType);
            }
            connection.setDoOutput(true);
            connection.setFixedLengthStreamingMode(body.length);
            OutputStream out = connection.getOutputStream();
            out.write(body);
            out.close();
            int status = connection.getResponseCode();
            // Reading the answer to its end lets the connection be reused.
            readAll(status < 400 ? connection.getInputStream() : connection.getErrorStream());
        } catch (IOException e) {
            throw serverGone(e);
        }
    }

    private HttpURLConnection open(String path) throws IOException {
        HttpURLConnection connection = (HttpURLConnection) new URL(base + path).openConnection();
        connection.setReadTimeout(0); // /next waits as long as it takes
        return connection;
    }

    private static Error serverGone(IOException e) {
        System.err.println("bootstrap: the Runtime API is unreachable: " + e);
        System.exit(1);
        return new Error(e); // not reached
    }

    static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        if (in == null) {
            return out.toByteArray();
        }
        byte[] buffer = new byte[65536];
        for (int n; (n = in.read(buffer)) != -1; ) {
            out.write(buffer, 0, n);
        }
        in.close();
        return out.toByteArray();
    }
}
