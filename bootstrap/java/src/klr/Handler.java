package klr;

/** 5. Handler loading: a loaded handler: one event in, the function's result (JSON, or a
 *  stream's bytes) out. */
interface Handler {
    byte[] call(byte[] event, Object context, Serialization.Platform platform) throws Throwable;
}
