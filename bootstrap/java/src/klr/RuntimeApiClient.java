package klr;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;

/**
 * 2. Runtime API client: the Runtime API (2018-06-01) at AWS_LAMBDA_RUNTIME_API over one
 * keep-alive HTTP/1.1 connection, with the rules of bootstrap/README.md. HTTP/1.1 is spoken
 * here over a plain socket because HttpURLConnection retries requests on its own, which the
 * one-retry rule forbids (and it loads far more classes, which costs start-up time).
 */
final class RuntimeApiClient {
    private static final String PREFIX = "/2018-06-01/runtime";
    private static final String ERROR_CONTENT_TYPE = "application/vnd.aws.lambda.error+json";
    private static final byte[] NO_BODY = new byte[0];

    private final String address;
    private final String host;
    private final int port;
    private Socket socket;
    private InputStream in;
    private OutputStream out;

    RuntimeApiClient(String address) {
        this.address = address;
        int colon = address.lastIndexOf(':');
        this.host = colon < 0 ? address : address.substring(0, colon);
        this.port = colon < 0 ? 80 : Integer.parseInt(address.substring(colon + 1));
    }

    /** Blocks until the server has an event: no read timeout. */
    Invocation nextInvocation() {
        String path = PREFIX + "/invocation/next";
        Response response = send("GET", path, NO_BODY, null, null);
        if (response.status != 200) {
            unexpected("GET", path, response.status);
        }
        return new Invocation(response.headers, response.body);
    }

    void postResponse(String requestId, byte[] body, String contentType) {
        post(PREFIX + "/invocation/" + requestId + "/response", body, contentType, null);
    }

    void postError(String requestId, byte[] body, String errorType) {
        post(PREFIX + "/invocation/" + requestId + "/error", body, ERROR_CONTENT_TYPE, errorType);
    }

    void postInitError(byte[] body, String errorType) {
        post(PREFIX + "/init/error", body, ERROR_CONTENT_TYPE, errorType);
    }

    private void post(String path, byte[] body, String contentType, String errorType) {
        int status = send("POST", path, body, contentType, errorType).status;
        if (status >= 400 && status < 500) {
            // The server refused this result (too large, stale id) and settled the invocation.
            System.err.println("bootstrap: the Runtime API refused POST " + path + " with HTTP " + status);
        } else if (status != 202) {
            unexpected("POST", path, status);
        }
    }

    /** One retry on a fresh connection when no answer arrived; then the server is gone. */
    private Response send(String method, String path, byte[] body, String contentType, String errorType) {
        IOException failure = null;
        for (int attempt = 0; attempt < 2; attempt++) {
            Exchange exchange = new Exchange();
            try {
                return exchange.run(method, path, body, contentType, errorType);
            } catch (IOException e) {
                close();
                failure = e;
                if (exchange.answered) {
                    break; // an answer that broke off is no dropped connection: no retry
                }
            }
        }
        System.err.println("bootstrap: lost the Runtime API at " + address + ": " + failure);
        System.exit(1);
        throw new IllegalStateException("not reached");
    }

    private static void unexpected(String method, String path, int status) {
        System.err.println("bootstrap: the Runtime API answered " + method + " " + path + " with HTTP " + status);
        System.exit(1);
    }

    private void close() {
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException e) {
                // closing a broken connection: nothing left to do
            }
            socket = null;
        }
    }

    /** One request and its answer. */
    private final class Exchange {
        boolean answered;

        Response run(String method, String path, byte[] body, String contentType, String errorType)
                throws IOException {
            if (socket == null) {
                socket = new Socket();
                socket.setTcpNoDelay(true);
                socket.connect(new InetSocketAddress(host, port));
                in = new BufferedInputStream(socket.getInputStream(), 65536);
                out = socket.getOutputStream();
            }
            StringBuilder head = new StringBuilder(256)
                    .append(method).append(' ').append(path).append(" HTTP/1.1\r\n")
                    .append("Host: ").append(address).append("\r\n");
            if (!method.equals("GET")) {
                head.append("Content-Length: ").append(body.length).append("\r\n");
                head.append("Content-Type: ").append(contentType).append("\r\n");
            }
            if (errorType != null) {
                head.append("Lambda-Runtime-Function-Error-Type: ").append(errorType).append("\r\n");
            }
            out.write(head.append("\r\n").toString().getBytes(StandardCharsets.UTF_8));
            out.write(body);
            out.flush();
            return read();
        }

        private Response read() throws IOException {
            String statusLine = line();
            answered = true;
            String[] parts = statusLine.split(" ", 3);
            if (parts.length < 2 || !parts[0].startsWith("HTTP/")) {
                throw new IOException("not an HTTP answer: " + statusLine);
            }
            Map<String, String> headers = new TreeMap<String, String>(String.CASE_INSENSITIVE_ORDER);
            for (String header; !(header = line()).isEmpty(); ) {
                int colon = header.indexOf(':');
                if (colon > 0) {
                    headers.put(header.substring(0, colon).trim(), header.substring(colon + 1).trim());
                }
            }
            byte[] body;
            String length = headers.get("Content-Length");
            if ("chunked".equalsIgnoreCase(headers.get("Transfer-Encoding"))) {
                body = chunked();
            } else if (length != null) {
                body = exactly(Integer.parseInt(length.trim()));
            } else {
                body = NO_BODY;
            }
            if ("close".equalsIgnoreCase(headers.get("Connection"))) {
                close();
            }
            return new Response(Integer.parseInt(parts[1]), headers, body);
        }

        private byte[] chunked() throws IOException {
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            while (true) {
                String size = line();
                int semicolon = size.indexOf(';');
                int n = Integer.parseInt((semicolon < 0 ? size : size.substring(0, semicolon)).trim(), 16);
                if (n == 0) {
                    while (!line().isEmpty()) {
                        // trailers: none that matter
                    }
                    return body.toByteArray();
                }
                body.write(exactly(n));
                line();
            }
        }

        private byte[] exactly(int n) throws IOException {
            byte[] bytes = new byte[n];
            for (int read = 0; read < n; ) {
                int got = in.read(bytes, read, n - read);
                if (got < 0) {
                    throw new EOFException("the answer ended after " + read + " of " + n + " bytes");
                }
                read += got;
            }
            return bytes;
        }

        /** A header line without its CRLF; UTF-8, as JSON in headers (the client context) may be. */
        private String line() throws IOException {
            ByteArrayOutputStream text = new ByteArrayOutputStream(128);
            for (int b; (b = in.read()) != '\n'; ) {
                if (b < 0) {
                    throw new EOFException("the connection closed");
                }
                text.write(b);
            }
            byte[] bytes = text.toByteArray();
            int end = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
            return new String(bytes, 0, end, StandardCharsets.UTF_8);
        }
    }

    private static final class Response {
        final int status;
        final Map<String, String> headers;
        final byte[] body;

        Response(int status, Map<String, String> headers, byte[] body) {
            this.status = status;
            this.headers = headers;
            this.body = body;
        }
    }
}
