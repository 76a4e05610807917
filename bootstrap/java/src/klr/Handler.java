package klr;

/** A loaded handler: one event in, the function's result (JSON, or a stream's bytes) out. */
interface Handler {
    byte[] call(byte[] event, Object context) throws Throwable;
}
