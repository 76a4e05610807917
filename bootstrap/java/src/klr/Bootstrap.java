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
 * KLR bootstrap shim for Java functions: a small Lambda runtime client.
 *
 * <p>Started by the {@code bootstrap} script. It loads the handler named by {@code _HANDLER} from
 * the function's code ({@code $LAMBDA_TASK_ROOT}, its {@code lib/*.jar}, then {@code /opt/java/lib/*.jar}),
 * then loops over the Lambda Runtime API (2018-06-01): get an event, call the handler, post the
 * result or error. What the function observes (handler forms, JSON mapping, context, error types
 * and logs) follows the official Java runtime. Standard library only; Java 8 and later.
 */
public final class Bootstrap {
    /** Lambda's Java runtime hands the X-Ray trace header to the function (and the X-Ray SDK)
     *  as this system property: a JVM cannot change its own environment. */
    static final String TRACE_PROPERTY = "com.amazonaws.xray.traceHeader";

    private Bootstrap() {
    }

    public static void main(String[] args) throws Exception {
        // Unbuffered UTF-8 streams: output is never lost on exit and always precedes the END line.
        System.setOut(utf8Stream(FileDescriptor.out));
        System.setErr(utf8Stream(FileDescriptor.err));
        RuntimeApi api = new RuntimeApi(env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"));
        ClassLoader loader = userClassLoader(env("LAMBDA_TASK_ROOT", "/var/task"), "/opt/java");
        Thread.currentThread().setContextClassLoader(loader);
        Handler handler;
        try {
            handler = HandlerLoader.load(env("_HANDLER", ""), loader);
        } catch (Fault fault) {
            fault.log();
            api.postInitError(fault);
            System.exit(1);
            return;
        }
        LambdaContext contexts = new LambdaContext(loader);
        while (true) {
            serve(api, handler, contexts);
        }
    }

    private static void serve(RuntimeApi api, Handler handler, LambdaContext contexts) {
        Invocation invocation = api.next();
        if (invocation.traceId != null) {
            System.setProperty(TRACE_PROPERTY, invocation.traceId);
        } else {
            System.clearProperty(TRACE_PROPERTY);
        }
        Fault fault;
        try {
            byte[] result = handler.call(invocation.event, contexts.create(invocation));
            api.postResponse(invocation.requestId, result);
            Thread.interrupted(); // an interrupt the function left behind must not reach the next call
            return;
        } catch (Fault f) {
            fault = f;
        } catch (Throwable t) {
            fault = Fault.thrownByFunction(t);
        }
        fault.log();
        api.postError(invocation.requestId, fault);
        if (fault.fatal) {
            System.exit(1);
        }
    }

    /** The function's class loader, as Lambda builds it: the task root's classes, then its
     *  lib/*.jar and the layers' /opt/java/lib/*.jar, each folder in name order. */
    static ClassLoader userClassLoader(String taskRoot, String layerRoot) throws MalformedURLException {
        List<URL> urls = new ArrayList<URL>();
        urls.add(new File(taskRoot).toURI().toURL());
        addJars(new File(taskRoot, "lib"), urls);
        addJars(new File(layerRoot, "lib"), urls);
        return new URLClassLoader(urls.toArray(new URL[0]), Bootstrap.class.getClassLoader());
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

    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    private static PrintStream utf8Stream(FileDescriptor fd) throws UnsupportedEncodingException {
        return new PrintStream(new FileOutputStream(fd), true, "UTF-8");
    }
}
