package klr;

import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.io.UnsupportedEncodingException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * KLR bootstrap shim for Java functions: a small Lambda runtime client, started by the
 * {@code bootstrap} script. Its sections are those of every shim (bootstrap/README.md):
 * <ol>
 * <li>Settings: {@link Settings};
 * <li>Runtime API client: {@link RuntimeApiClient}, {@link Invocation};
 * <li>Errors: {@link Fault}, and the log formatting in {@link FunctionLog};
 * <li>Context: {@link LambdaContext};
 * <li>Handler loading: {@link HandlerLoader}, {@link Handler}, and the function's class loader
 *     (here);
 * <li>The loop: {@link #main} and {@link #serveOne} (here), events and results converted by
 *     {@link Serialization}.
 * </ol>
 * What the function observes (handler forms, JSON mapping, context, error types and logs)
 * follows the official Java runtime; events and results go through aws-lambda-java-serialization,
 * the official runtime's own library. Java 8 and later.
 */
public final class Bootstrap {
    /** Lambda's Java runtime hands the X-Ray trace header to the function (and the X-Ray SDK)
     *  as this system property: a JVM cannot change its own environment. */
    static final String TRACE_PROPERTY = "com.amazonaws.xray.traceHeader";

    private Bootstrap() {
    }

    // ---- 5. Handler loading: the function's class loader ------------------------------------

    /** The function's class loader, as Lambda builds it: the task root's classes, then its
     *  lib/*.jar and the layers' /opt/java/lib/*.jar, each folder in name order. Its parent is
     *  the system class loader, which sees this shim wherever the JVM has it (on Java 8, the
     *  boot class path: see images/java/Dockerfile). */
    static ClassLoader userClassLoader(String taskRoot, String layerRoot) throws MalformedURLException {
        List<URL> urls = new ArrayList<URL>();
        urls.add(new File(taskRoot).toURI().toURL());
        addJars(new File(taskRoot, "lib"), urls);
        addJars(new File(layerRoot, "lib"), urls);
        return new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getSystemClassLoader());
    }

    private static void addJars(File folder, List<URL> urls) throws MalformedURLException {
        String[] names = folder.list();
        if (names == null) {
            return;
        }
        Arrays.sort(names);
        for (String name : names) {
            if (name.endsWith(".jar")) {
                urls.add(new File(folder, name).toURI().toURL());
            }
        }
    }

    // ---- 6. The loop ------------------------------------------------------------------------

    public static void main(String[] args) throws Exception {
        // Unbuffered UTF-8 streams: output is never lost on exit and always precedes the END line.
        System.setOut(utf8Stream(FileDescriptor.out));
        System.setErr(utf8Stream(FileDescriptor.err));
        Settings settings = Settings.read();
        RuntimeApiClient client = new RuntimeApiClient(settings.runtimeApi);
        ClassLoader loader = userClassLoader(settings.taskRoot, "/opt/java");
        Thread.currentThread().setContextClassLoader(loader);
        Handler handler;
        try {
            handler = HandlerLoader.load(settings.handler, loader, new Serialization(loader));
        } catch (Fault fault) {
            fault.log();
            client.postInitError(fault.toJson(), fault.header);
            System.exit(1);
            return;
        }
        LambdaContext contexts = new LambdaContext(loader);
        while (true) {
            serveOne(client, handler, contexts);
        }
    }

    private static void serveOne(RuntimeApiClient client, Handler handler, LambdaContext contexts) {
        Invocation invocation = client.nextInvocation();
        FunctionLog.requestId = invocation.requestId;
        if (invocation.traceId != null) {
            System.setProperty(TRACE_PROPERTY, invocation.traceId);
        } else {
            System.clearProperty(TRACE_PROPERTY);
        }
        Fault fault;
        try {
            LambdaContext.ClientContextData clientContext = LambdaContext.clientContextOf(invocation);
            Object context = contexts.create(invocation, clientContext);
            Serialization.Platform platform =
                    Serialization.platform(clientContext == null ? null : clientContext.env);
            byte[] result = handler.call(invocation.event, context, platform);
            client.postResponse(invocation.requestId, result, "application/json");
            Thread.interrupted(); // an interrupt the function left behind must not reach the next call
            return;
        } catch (Fault f) {
            fault = f;
        } catch (Throwable t) {
            fault = Fault.thrownByFunction(t);
        }
        fault.log();
        client.postError(invocation.requestId, fault.toJson(), fault.header);
        if (fault.fatal) {
            System.exit(1);
        }
    }

    private static PrintStream utf8Stream(FileDescriptor fd) throws UnsupportedEncodingException {
        return new PrintStream(new FileOutputStream(fd), true, "UTF-8");
    }
}
