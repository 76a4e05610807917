package klr;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * 3. Errors (log formatting): what the function's LambdaLogger, and the runtime's own error log,
 * write to stdout, as Lambda's Java runtimes write it. A message logged with a level below
 * AWS_LAMBDA_LOG_LEVEL is dropped; one with a level is prefixed {@code [LEVEL] } in text; with
 * AWS_LAMBDA_LOG_FORMAT=JSON every message is one JSON record {timestamp, message, level,
 * AWSRequestId}. byte[] messages and System.out/System.err are never formatted. Lambda's java8
 * runtime (Amazon Linux 1) has none of this: there messages are written as they are.
 */
final class FunctionLog {
    /** Lambda's LogLevel, in order; UNDEFINED is the level of a message logged without one. */
    private static final List<String> LEVELS =
            Arrays.asList("UNDEFINED", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL");
    private static final DateTimeFormatter TIMESTAMP =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private static final boolean LEVELS_KNOWN =
            !"1.8".equals(System.getProperty("java.specification.version"));
    static final boolean JSON =
            LEVELS_KNOWN && "JSON".equalsIgnoreCase(System.getenv("AWS_LAMBDA_LOG_FORMAT"));
    /** Unset or not a level: nothing is dropped. */
    private static final int MINIMUM = Math.max(0, LEVELS.indexOf(upper(System.getenv("AWS_LAMBDA_LOG_LEVEL"))));

    /** The current invocation's, for JSON records; null (left out) during init. */
    static volatile String requestId;

    private FunctionLog() {
    }

    /** LambdaLogger.log(message[, level]): message a String or byte[], level the function's own
     *  LogLevel constant or null. */
    static void log(Object message, Object level) {
        if (!LEVELS_KNOWN) {
            write(message instanceof byte[] ? (byte[]) message : utf8(String.valueOf(message)));
            return;
        }
        String name = level == null ? "UNDEFINED" : level.toString();
        int rank = LEVELS.indexOf(name);
        if (rank > 0 && rank < MINIMUM) {
            return;
        }
        if (message instanceof byte[]) {
            write((byte[]) message);
        } else if (JSON) {
            write(record((String) message, name));
        } else {
            String text = String.valueOf(message);
            write(utf8(rank > 0 ? "[" + name + "] " + text : text));
        }
    }

    /** The runtime's own error log: text as it is, or in JSON one ERROR record. */
    static void logError(String text) {
        write(JSON ? record(text, "ERROR") : utf8(text));
    }

    private static byte[] record(String message, String level) {
        Map<String, Object> fields = new LinkedHashMap<String, Object>(); // the official order
        fields.put("timestamp", TIMESTAMP.format(Instant.now()));
        if (message != null) {
            fields.put("message", message);
        }
        fields.put("level", level);
        String id = requestId;
        if (id != null) {
            fields.put("AWSRequestId", id);
        }
        byte[] json = Serialization.json(fields);
        byte[] line = Arrays.copyOf(json, json.length + 1);
        line[json.length] = '\n';
        return line;
    }

    private static void write(byte[] bytes) {
        System.out.write(bytes, 0, bytes.length);
        System.out.flush();
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static String upper(String value) {
        return value == null ? "" : value.trim().toUpperCase(Locale.ROOT);
    }
}
