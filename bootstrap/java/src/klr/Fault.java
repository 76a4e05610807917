package klr;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * 3. Errors: an error as the official Java runtime reports it: the JSON body, the
 * Lambda-Runtime-Function-Error-Type header, the log text, and whether the runtime must exit.
 */
final class Fault extends RuntimeException {
    private static final long serialVersionUID = 1L;
    static final String USER_EXCEPTION = "Runtime.UserException";
    static final String BAD_FUNCTION_CODE = "Runtime.BadFunctionCode";

    final String errorMessage;
    final String errorType;     // null: left out, as the official runtime does for some load faults
    final String[] stackTrace;  // null: left out (load faults)
    final String header;
    final boolean fatal;
    private final String logText;

    private Fault(String errorMessage, String errorType, String[] stackTrace, String header,
                  boolean fatal, String logText) {
        super(errorMessage, null, false, false);
        this.errorMessage = errorMessage;
        this.errorType = errorType;
        this.stackTrace = stackTrace;
        this.header = header;
        this.fatal = fatal;
        this.logText = logText;
    }

    /** A handler that cannot be used, with no exception behind it (bad name, no such method). */
    static Fault badFunction(String message) {
        return new Fault(message, null, null, BAD_FUNCTION_CODE, false, message + "\n");
    }

    /** A handler that cannot be used because loading it threw. Fatal faults end init (or the
     *  runtime, when found on the first call); the others are reported for every call. */
    static Fault badFunction(String message, Throwable cause, boolean fatal) {
        String type = cause.getClass().getName();
        return new Fault(message, type, null, BAD_FUNCTION_CODE, fatal,
                message + ": " + type + "\n" + printed(cause) + "\n");
    }

    /** An exception the function threw. */
    static Fault thrownByFunction(Throwable t) {
        withoutRuntimeFrames(t);
        StackTraceElement[] frames = t.getStackTrace();
        String[] trace = new String[frames.length];
        for (int i = 0; i < frames.length; i++) {
            trace[i] = frames[i].toString();
        }
        String message = messageOf(t);
        String type = t.getClass().getName();
        // The JVM cannot be trusted after these; the official runtime exits too.
        boolean fatal = t instanceof VirtualMachineError || t instanceof java.io.IOError;
        return new Fault(message, type, trace, USER_EXCEPTION, fatal,
                message + ": " + type + "\n" + printed(t) + "\n");
    }

    static String messageOf(Throwable t) {
        String message = t.getLocalizedMessage();
        return message == null ? t.getClass().getName() : message;
    }

    /** The function's exception printed as Java does, without this runtime's own frames. */
    static String printed(Throwable t) {
        withoutRuntimeFrames(t);
        StringWriter text = new StringWriter();
        t.printStackTrace(new PrintWriter(text));
        return text.toString();
    }

    /** Cut each stack trace (causes and suppressed ones included) at the first frame of this
     *  runtime, so that a trace starts in the function and ends where the runtime called it. */
    private static void withoutRuntimeFrames(Throwable t) {
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<Throwable, Boolean>());
        cut(t, seen);
    }

    private static void cut(Throwable t, Set<Throwable> seen) {
        if (t == null || !seen.add(t)) {
            return;
        }
        StackTraceElement[] frames = t.getStackTrace();
        for (int i = 0; i < frames.length; i++) {
            if (frames[i].getClassName().startsWith("klr.")) {
                StackTraceElement[] kept = new StackTraceElement[i];
                System.arraycopy(frames, 0, kept, 0, i);
                t.setStackTrace(kept);
                break;
            }
        }
        cut(t.getCause(), seen);
        for (Throwable suppressed : t.getSuppressed()) {
            cut(suppressed, seen);
        }
    }

    byte[] toJson() {
        Map<String, Object> body = new LinkedHashMap<String, Object>();
        body.put("errorMessage", errorMessage);
        if (errorType != null) {
            body.put("errorType", errorType);
        }
        if (stackTrace != null) {
            body.put("stackTrace", stackTrace);
        }
        return Serialization.json(body);
    }

    /** Logged to stdout as the official runtime logs it. */
    void log() {
        FunctionLog.logError(logText);
    }
}
