package klr;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Resolves _HANDLER as the official Java runtime does: {@code pkg.Class::method}, or
 * {@code pkg.Class} implementing RequestStreamHandler or RequestHandler&lt;I, O&gt;. The
 * interfaces come from the function's own aws-lambda-java-core jar, so they are looked up
 * through its class loader. Faults that the official runtime reports on every call (missing
 * class or method, bad name) become a handler that fails every call; the ones that end its
 * init (a static initialiser or constructor that throws) are thrown.
 */
final class HandlerLoader {
    private static final String CORE = "com.amazonaws.services.lambda.runtime.";
    private static final byte[] JSON_NULL = "null".getBytes(StandardCharsets.UTF_8);

    /** What each parameter of a handler method receives. */
    private enum Arg { EVENT, INPUT_STREAM, OUTPUT_STREAM, CONTEXT }

    private HandlerLoader() {
    }

    static Handler load(String name, ClassLoader loader) {
        int colons = name.lastIndexOf("::");
        String className = colons < 0 ? name : name.substring(0, colons);
        String methodName = colons < 0 ? null : name.substring(colons + 2);
        if (className.isEmpty() || (methodName != null && methodName.isEmpty())) {
            return failing(Fault.badFunction("Invalid handler: `" + name + "'"));
        }
        Class<?> type;
        try {
            type = Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            return failing(Fault.badFunction("Class not found: " + className, e, false));
        } catch (NoClassDefFoundError e) {
            // Reported on the first call, which then ends the runtime.
            return failing(Fault.badFunction(loadingMessage(className, e), e, true));
        } catch (Throwable e) {
            throw Fault.badFunction(loadingMessage(className, e), e, true);
        }
        try {
            return methodName == null ? forClass(type, loader) : forMethod(type, methodName, loader);
        } catch (Fault fault) {
            if (fault.fatal) {
                throw fault;
            }
            return failing(fault);
        }
    }

    private static String loadingMessage(String className, Throwable e) {
        return "Error loading class " + className + (e.getMessage() == null ? "" : ": " + e.getMessage());
    }

    private static Handler failing(final Fault fault) {
        return new Handler() {
            public byte[] call(byte[] event, Object context) {
                throw fault;
            }
        };
    }

    /** An interface of aws-lambda-java-core as the function sees it; null when it ships none. */
    static Class<?> core(ClassLoader loader, String simpleName) {
        try {
            return Class.forName(CORE + simpleName, false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            return null;
        }
    }

    /** pkg.Class: a RequestStreamHandler, or a RequestHandler whose I is the event's type. */
    private static Handler forClass(Class<?> type, ClassLoader loader) {
        Class<?> streamHandler = core(loader, "RequestStreamHandler");
        Class<?> requestHandler = core(loader, "RequestHandler");
        if (streamHandler != null && streamHandler.isAssignableFrom(type)) {
            Method method = interfaceMethod(streamHandler, "handleRequest");
            return new Call(newInstance(type), method, null, false,
                    new Arg[] {Arg.INPUT_STREAM, Arg.OUTPUT_STREAM, Arg.CONTEXT});
        }
        if (requestHandler != null && requestHandler.isAssignableFrom(type)) {
            Map<TypeVariable<?>, Type> bindings = Types.bindings(type);
            TypeVariable<?>[] variables = requestHandler.getTypeParameters();
            if (!bindings.containsKey(variables[0])) {
                throw Fault.badFunction("Class " + type.getName()
                        + " does not implement RequestHandler with concrete type parameters");
            }
            Type[] io = new Type[2];
            for (int i = 0; i < 2; i++) {
                io[i] = bindings.get(variables[i]);
                if (io[i] instanceof TypeVariable && Types.raw(io[i]) == Object.class) {
                    throw Fault.badFunction("Class " + type.getName()
                            + " does not implement RequestHandler with concrete type parameters: parameter "
                            + io[i] + " has no upper bound.");
                }
            }
            Method method = interfaceMethod(requestHandler, "handleRequest");
            return new Call(newInstance(type), method, io[0], !Types.isVoid(io[1]),
                    new Arg[] {Arg.EVENT, Arg.CONTEXT});
        }
        throw Fault.badFunction("Class does not implement an appropriate handler interface: " + type.getName());
    }

    private static Method interfaceMethod(Class<?> iface, String name) {
        for (Method method : iface.getMethods()) {
            if (method.getName().equals(name) && !method.isDefault()) {
                return method;
            }
        }
        throw new IllegalStateException(iface.getName() + " has no method " + name);
    }

    /** pkg.Class::method: among the public methods of that name, the official order decides:
     *  non-bridge methods first, then longer signatures, a trailing Context counting one more. */
    private static Handler forMethod(Class<?> type, String name, ClassLoader loader) {
        final Class<?> context = core(loader, "Context");
        Method[] methods;
        try {
            methods = type.getMethods();
        } catch (NoClassDefFoundError e) {
            throw Fault.badFunction("Error loading method " + name + " on class " + type.getName(), e, false);
        }
        List<Method> candidates = new ArrayList<Method>();
        for (Method method : methods) {
            if (method.getName().equals(name)) {
                candidates.add(method);
            }
        }
        Collections.sort(candidates, new Comparator<Method>() {
            public int compare(Method a, Method b) {
                if (a.isBridge() != b.isBridge()) {
                    return a.isBridge() ? 1 : -1;
                }
                return weight(b, context) - weight(a, context);
            }
        });
        for (Method method : candidates) {
            Arg[] args = shape(method, context);
            if (args != null) {
                Object target = Modifier.isStatic(method.getModifiers()) ? null : newInstance(type);
                boolean streams = contains(args, Arg.INPUT_STREAM) || contains(args, Arg.OUTPUT_STREAM);
                Type event = null;
                for (int i = 0; i < args.length; i++) {
                    if (args[i] == Arg.EVENT) {
                        event = method.getGenericParameterTypes()[i];
                    }
                }
                return new Call(target, method, event, !streams && !Types.isVoid(method.getGenericReturnType()), args);
            }
        }
        throw Fault.badFunction("No public method named " + name
                + " with appropriate method signature found on class " + type.getName());
    }

    private static int weight(Method method, Class<?> context) {
        Class<?>[] parameters = method.getParameterTypes();
        boolean endsWithContext = parameters.length > 0 && parameters[parameters.length - 1] == context;
        return parameters.length + (endsWithContext ? 1 : 0);
    }

    /** The parameters of an accepted signature, or null (with the reason on stderr):
     *  (InputStream, OutputStream[, Context]), (OutputStream, Context), (InputStream[, Context]),
     *  (OutputStream), (Context), (event[, Context]), (). */
    private static Arg[] shape(Method method, Class<?> context) {
        Class<?>[] p = method.getParameterTypes();
        Arg[] args = new Arg[p.length];
        for (int i = 0; i < p.length; i++) {
            args[i] = p[i] == InputStream.class ? Arg.INPUT_STREAM
                    : p[i] == OutputStream.class ? Arg.OUTPUT_STREAM
                    : p[i] == context ? Arg.CONTEXT : Arg.EVENT;
        }
        boolean accepted;
        switch (p.length) {
            case 0:
            case 1:
                accepted = true;
                break;
            case 2:
                accepted = args[0] == Arg.INPUT_STREAM ? args[1] == Arg.OUTPUT_STREAM || args[1] == Arg.CONTEXT
                        : args[0] == Arg.OUTPUT_STREAM || args[0] == Arg.EVENT ? args[1] == Arg.CONTEXT
                        : false;
                break;
            case 3:
                accepted = args[0] == Arg.INPUT_STREAM && args[1] == Arg.OUTPUT_STREAM && args[2] == Arg.CONTEXT;
                break;
            default:
                accepted = false;
        }
        if (!accepted) {
            System.err.println("Ignoring the overload " + method.toGenericString()
                    + ": its parameters are not a handler's");
        }
        return accepted ? args : null;
    }

    private static boolean contains(Arg[] args, Arg wanted) {
        for (Arg arg : args) {
            if (arg == wanted) {
                return true;
            }
        }
        return false;
    }

    /** The handler's instance, made once at init. A constructor that throws ends init. */
    private static Object newInstance(Class<?> type) {
        Constructor<?> constructor;
        try {
            constructor = type.getConstructor();
        } catch (NoSuchMethodException e) {
            String reason = type.getEnclosingClass() != null && !Modifier.isStatic(type.getModifiers())
                    ? " cannot be instantiated because it is a non-static inner class"
                    : " has no public zero-argument constructor";
            Exception problem = new Exception("Class " + type.getName() + reason);
            throw Fault.badFunction(problem.getMessage(), problem, false);
        }
        try {
            return constructor.newInstance();
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw Fault.badFunction(Fault.messageOf(cause), cause, true);
        } catch (Exception e) {
            throw Fault.badFunction(Fault.messageOf(e), e, false);
        }
    }

    /** One handler method bound to its instance, and what each of its parameters receives. */
    private static final class Call implements Handler {
        private final Object target;
        private final Method method;
        private final Type eventType;
        private final boolean returnsResult;
        private final Arg[] args;

        Call(Object target, Method method, Type eventType, boolean returnsResult, Arg[] args) {
            this.target = target;
            this.method = method;
            this.eventType = eventType;
            this.returnsResult = returnsResult;
            this.args = args;
            try {
                method.setAccessible(true); // a public method of a class that is not
            } catch (RuntimeException e) {
                // left as it is: the call reports what Java says
            }
        }

        public byte[] call(byte[] event, Object context) throws Throwable {
            Object[] values = new Object[args.length];
            ByteArrayOutputStream output = null;
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case EVENT:
                        values[i] = parse(event);
                        break;
                    case INPUT_STREAM:
                        values[i] = new ByteArrayInputStream(event);
                        break;
                    case OUTPUT_STREAM:
                        values[i] = output = new ByteArrayOutputStream();
                        break;
                    default:
                        values[i] = context;
                }
            }
            Object result;
            try {
                result = method.invoke(target, values);
            } catch (InvocationTargetException e) {
                throw e.getCause() == null ? e : e.getCause();
            }
            if (output != null) {
                return output.toByteArray();
            }
            return returnsResult ? serialise(result) : JSON_NULL;
        }

        private Object parse(byte[] event) {
            try {
                return Beans.convert(Json.parse(new String(event, StandardCharsets.UTF_8)), eventType);
            } catch (Throwable t) {
                throw new RuntimeException("An error occurred during JSON parsing", t);
            }
        }

        private static byte[] serialise(Object result) {
            try {
                return Json.write(result).getBytes(StandardCharsets.UTF_8);
            } catch (Throwable t) {
                throw new RuntimeException("An error occurred during JSON serialization of response", t);
            }
        }
    }
}
