package klr;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * 5. Handler loading: resolves _HANDLER as the official Java runtime does: {@code pkg.Class::method}, or
 * {@code pkg.Class} implementing RequestStreamHandler or RequestHandler&lt;I, O&gt;. The
 * interfaces come from the function's own aws-lambda-java-core jar, so they are looked up
 * through its class loader. Faults that the official runtime reports on every call (missing
 * class or method, bad name) become a handler that fails every call; the ones that end its
 * init (a static initialiser or constructor that throws) are thrown. Event and result
 * serializers are made while loading, as the official runtime makes them.
 */
final class HandlerLoader {
    private static final String CORE = "com.amazonaws.services.lambda.runtime.";
    private static final byte[] JSON_NULL = "null".getBytes(StandardCharsets.UTF_8);

    /** What each parameter of a handler method receives. */
    private enum Arg { EVENT, INPUT_STREAM, OUTPUT_STREAM, CONTEXT }

    private HandlerLoader() {
    }

    static Handler load(String name, ClassLoader loader, Serialization serialization) {
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
            return methodName == null
                    ? forClass(type, loader, serialization)
                    : forMethod(type, methodName, loader, serialization);
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
            public byte[] call(byte[] event, Object context, Serialization.Platform platform) {
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
    private static Handler forClass(Class<?> type, ClassLoader loader, Serialization serialization) {
        Class<?> streamHandler = core(loader, "RequestStreamHandler");
        Class<?> requestHandler = core(loader, "RequestHandler");
        if (streamHandler != null && streamHandler.isAssignableFrom(type)) {
            Method method = interfaceMethod(streamHandler, "handleRequest");
            return new Call(newInstance(type), method, null, null,
                    new Arg[] {Arg.INPUT_STREAM, Arg.OUTPUT_STREAM, Arg.CONTEXT}, serialization);
        }
        if (requestHandler != null && requestHandler.isAssignableFrom(type)) {
            Type[] io = typeArguments(type, requestHandler, new HashMap<TypeVariable<?>, Type>());
            if (io == null) {
                throw Fault.badFunction("Class " + type.getName()
                        + " does not implement RequestHandler with concrete type parameters");
            }
            for (Type t : io) {
                if (t instanceof TypeVariable && !hasBound((TypeVariable<?>) t)) {
                    throw Fault.badFunction("Class " + type.getName()
                            + " does not implement RequestHandler with concrete type parameters: parameter "
                            + t + " has no upper bound.");
                }
            }
            Method method = interfaceMethod(requestHandler, "handleRequest");
            return new Call(newInstance(type), method, io[0], isVoid(io[1]) ? null : io[1],
                    new Arg[] {Arg.EVENT, Arg.CONTEXT}, serialization);
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

    /** The type arguments the class gives the generic interface, through its superclasses
     *  and interfaces; null when it implements the interface raw. Variables bound on the way
     *  are resolved; one left open stays a TypeVariable. */
    private static Type[] typeArguments(Type type, Class<?> iface, Map<TypeVariable<?>, Type> bound) {
        Class<?> raw = type instanceof ParameterizedType
                ? (Class<?>) ((ParameterizedType) type).getRawType() : (Class<?>) type;
        TypeVariable<?>[] variables = raw.getTypeParameters();
        if (type instanceof ParameterizedType) {
            Type[] arguments = ((ParameterizedType) type).getActualTypeArguments();
            for (int i = 0; i < variables.length; i++) {
                Type argument = bound.get(arguments[i]);
                bound.put(variables[i], argument == null ? arguments[i] : argument);
            }
        }
        if (raw == iface) {
            if (!(type instanceof ParameterizedType)) {
                return null;
            }
            Type[] found = new Type[variables.length];
            for (int i = 0; i < variables.length; i++) {
                found[i] = bound.get(variables[i]);
            }
            return found;
        }
        List<Type> parents = new ArrayList<Type>(Arrays.asList(raw.getGenericInterfaces()));
        if (raw.getGenericSuperclass() != null) {
            parents.add(raw.getGenericSuperclass());
        }
        for (Type parent : parents) {
            Class<?> parentClass = parent instanceof ParameterizedType
                    ? (Class<?>) ((ParameterizedType) parent).getRawType() : (Class<?>) parent;
            if (iface.isAssignableFrom(parentClass)) {
                return typeArguments(parent, iface, new HashMap<TypeVariable<?>, Type>(bound));
            }
        }
        return null;
    }

    private static boolean hasBound(TypeVariable<?> variable) {
        for (Type bound : variable.getBounds()) {
            if (bound != Object.class) {
                return true;
            }
        }
        return false;
    }

    private static boolean isVoid(Type type) {
        return type == void.class || type == Void.class;
    }

    /** pkg.Class::method: among the public methods of that name, the official order decides:
     *  non-bridge methods first, then longer signatures, a trailing Context counting one more. */
    private static Handler forMethod(Class<?> type, String name, ClassLoader loader, Serialization serialization) {
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
                Type result = streams || isVoid(method.getGenericReturnType()) ? null : method.getGenericReturnType();
                return new Call(target, method, event, result, args, serialization);
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

    /** One handler method bound to its instance, what each of its parameters receives, and the
     *  serializers of its event and result (null: none, the result is JSON null). */
    private static final class Call implements Handler {
        private final Object target;
        private final Method method;
        private final Type eventType;
        private final Type resultType;
        private final Arg[] args;
        private final Serialization serialization;

        Call(Object target, Method method, Type eventType, Type resultType, Arg[] args,
             Serialization serialization) {
            this.target = target;
            this.method = method;
            this.eventType = eventType;
            this.resultType = resultType;
            this.args = args;
            this.serialization = serialization;
            try {
                method.setAccessible(true); // a public method of a class that is not
            } catch (RuntimeException e) {
                // left as it is: the call reports what Java says
            }
            // Made now, as the official runtime makes them while loading the handler; a type
            // its serializer cannot take fails each invocation.
            for (Type type : new Type[] {eventType, resultType}) {
                try {
                    if (type != null) {
                        serialization.of(type, Serialization.Platform.OTHER);
                    }
                } catch (RuntimeException | LinkageError e) {
                    throw Fault.badFunction(Fault.messageOf(e), e, false);
                }
            }
        }

        public byte[] call(byte[] event, Object context, Serialization.Platform platform) throws Throwable {
            Object[] values = new Object[args.length];
            ByteArrayOutputStream output = null;
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case EVENT:
                        values[i] = parse(event, platform);
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
            return resultType == null ? JSON_NULL : serialise(result, platform);
        }

        private Object parse(byte[] event, Serialization.Platform platform) {
            try {
                return serialization.of(eventType, platform).fromJson(new ByteArrayInputStream(event));
            } catch (Throwable t) {
                throw new RuntimeException("An error occurred during JSON parsing", t);
            }
        }

        private byte[] serialise(Object result, Serialization.Platform platform) {
            try {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                serialization.of(resultType, platform).toJson(result, out);
                return out.toByteArray();
            } catch (Throwable t) {
                throw new RuntimeException("An error occurred during JSON serialization of response", t);
            }
        }
    }
}
