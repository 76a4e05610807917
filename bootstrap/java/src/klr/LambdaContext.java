package klr;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.Map;

/**
 * 4. Context: the context object handed to the function: a proxy implementing the function's own
 * {@code com.amazonaws.services.lambda.runtime.Context} (from its aws-lambda-java-core jar), with
 * Lambda's values. getIdentity() and getClientContext() are null when the invocation has none, as
 * in the official runtime; getLogger() writes to stdout through {@link FunctionLog}.
 */
final class LambdaContext {
    private final ClassLoader loader;
    private final Class<?> contextType;
    private final Object logger;
    private final int memoryLimit;

    LambdaContext(ClassLoader loader) {
        this.loader = loader;
        this.contextType = core("Context");
        this.logger = proxy(core("LambdaLogger"), new Values() {
            Object value(String name, Object[] args) {
                if (name.equals("log") && args != null && args.length > 0) {
                    // no newline added, as in the official runtime
                    FunctionLog.log(args[0], args.length > 1 ? args[1] : null);
                    return null;
                }
                return unknown("LambdaLogger", name);
            }
        });
        int memory;
        try {
            memory = Integer.parseInt(System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").trim());
        } catch (RuntimeException e) {
            memory = 3008; // Lambda's default when emulated, as in the bootstrap script
        }
        this.memoryLimit = memory;
    }

    /** The context of one invocation, or null when the function ships no Context interface
     *  (then none of its handlers can take one). */
    Object create(final Invocation invocation, ClientContextData clientContextData) {
        if (contextType == null) {
            return null;
        }
        final Object identity = identity(invocation.cognitoIdentity);
        final Object clientContext = clientContext(clientContextData);
        return proxy(contextType, new Values() {
            Object value(String name, Object[] args) {
                if (name.equals("getAwsRequestId")) {
                    return invocation.requestId;
                } else if (name.equals("getLogGroupName")) {
                    return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
                } else if (name.equals("getLogStreamName")) {
                    return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
                } else if (name.equals("getFunctionName")) {
                    return System.getenv("AWS_LAMBDA_FUNCTION_NAME");
                } else if (name.equals("getFunctionVersion")) {
                    return System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
                } else if (name.equals("getInvokedFunctionArn")) {
                    return invocation.functionArn;
                } else if (name.equals("getIdentity")) {
                    return identity;
                } else if (name.equals("getClientContext")) {
                    return clientContext;
                } else if (name.equals("getRemainingTimeInMillis")) {
                    return (int) Math.max(0, invocation.deadlineMs - System.currentTimeMillis());
                } else if (name.equals("getMemoryLimitInMB")) {
                    return memoryLimit;
                } else if (name.equals("getLogger")) {
                    return logger;
                } else if (name.equals("getTenantId")) {
                    return invocation.tenantId;
                } else if (name.equals("getXrayTraceId")) {
                    return invocation.traceId;
                }
                return unknown("Context", name);
            }
        });
    }

    /** The Cognito identity header, as Lambda's runtime reads it (Gson, these field names). */
    static final class CognitoIdentityData {
        String cognitoIdentityId;
        String cognitoIdentityPoolId;
    }

    /** The client context header, as Lambda's runtime reads it (Gson, these field names). */
    static final class ClientContextData {
        ClientData client;
        Map<String, String> custom;
        Map<String, String> env;
    }

    static final class ClientData {
        String installation_id;
        String app_title;
        String app_version_name;
        String app_version_code;
        String app_package_name;
    }

    /** The invocation's client context, or null when it has none. */
    static ClientContextData clientContextOf(Invocation invocation) {
        String header = invocation.clientContext;
        return header == null || header.isEmpty() ? null : Serialization.fromHeader(header, ClientContextData.class);
    }

    private Object identity(String header) {
        if (header == null || header.isEmpty()) {
            return null;
        }
        final CognitoIdentityData values = Serialization.fromHeader(header, CognitoIdentityData.class);
        return proxy(core("CognitoIdentity"), new Values() {
            Object value(String name, Object[] args) {
                if (name.equals("getIdentityId")) {
                    return values.cognitoIdentityId;
                } else if (name.equals("getIdentityPoolId")) {
                    return values.cognitoIdentityPoolId;
                }
                return unknown("CognitoIdentity", name);
            }
        });
    }

    private Object clientContext(final ClientContextData values) {
        if (values == null) {
            return null;
        }
        final ClientData clientValues = values.client;
        final Object client = clientValues == null ? null : proxy(core("Client"), new Values() {
            Object value(String name, Object[] args) {
                if (name.equals("getInstallationId")) {
                    return clientValues.installation_id;
                } else if (name.equals("getAppTitle")) {
                    return clientValues.app_title;
                } else if (name.equals("getAppVersionName")) {
                    return clientValues.app_version_name;
                } else if (name.equals("getAppVersionCode")) {
                    return clientValues.app_version_code;
                } else if (name.equals("getAppPackageName")) {
                    return clientValues.app_package_name;
                }
                return unknown("Client", name);
            }
        });
        return proxy(core("ClientContext"), new Values() {
            Object value(String name, Object[] args) {
                if (name.equals("getClient")) {
                    return client;
                } else if (name.equals("getCustom")) {
                    return values.custom;
                } else if (name.equals("getEnvironment")) {
                    return values.env;
                }
                return unknown("ClientContext", name);
            }
        });
    }

    private Class<?> core(String simpleName) {
        return HandlerLoader.core(loader, simpleName);
    }

    /** What a proxy answers, by method name; Object's methods are answered for it. */
    private abstract static class Values implements InvocationHandler {
        abstract Object value(String name, Object[] args);

        public Object invoke(Object proxy, Method method, Object[] args) {
            String name = method.getName();
            if (method.getDeclaringClass() == Object.class) {
                if (name.equals("equals")) {
                    return proxy == args[0];
                } else if (name.equals("hashCode")) {
                    return System.identityHashCode(proxy);
                }
                return "Lambda " + proxy.getClass().getInterfaces()[0].getSimpleName();
            }
            return value(name, args);
        }

        static Object unknown(String type, String name) {
            throw new UnsupportedOperationException(type + "." + name + " is not provided by the KLR runtime");
        }
    }

    private Object proxy(Class<?> type, Values values) {
        return type == null ? null : Proxy.newProxyInstance(loader, new Class<?>[] {type}, values);
    }
}
